//! Several compile errors at once: one build reports every mistake it can find, not only
//! the first.

/// The errors found so far, in the order they were found.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Ok(())` if no error was pushed, else all of them.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(errors) => Err(errors),
            None => Ok(()),
        }
    }
}

/// `second` if `first` is `Ok`, else the errors of `first` followed by those of `second`.
pub(crate) fn both<T>(first: syn::Result<()>, second: syn::Result<T>) -> syn::Result<T> {
    match (first, second) {
        (Ok(()), second) => second,
        (Err(errors), Ok(_)) => Err(errors),
        (Err(mut errors), Err(more)) => {
            errors.combine(more);
            Err(errors)
        }
    }
}
