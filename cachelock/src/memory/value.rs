//! [`Value`]: a stored string, inline when short.

use std::sync::Arc;

/// Values up to this many bytes are stored inline, without an allocation per claim. A lock's
/// value (`<32-hex token>|<pid>|<host>|<label>`) is about 45 to 60 bytes with a short host
/// name and label.
const INLINE: usize = 62;

/// A stored string: inline when short, shared when long.
#[derive(Clone)]
pub(super) enum Value {
    Inline { len: u8, bytes: [u8; INLINE] },
    Shared(Arc<str>),
}

impl Value {
    pub(super) fn new(value: &str) -> Self {
        match u8::try_from(value.len()) {
            Ok(len) if value.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..value.len()].copy_from_slice(value.as_bytes());
                Value::Inline { len, bytes }
            }
            _ => Value::Shared(Arc::from(value)),
        }
    }

    /// Overwrites this value with `value`, reusing the inline buffer when it fits.
    pub(super) fn assign(slot: &mut Option<Value>, value: &str) {
        match slot {
            Some(Value::Inline { len, bytes }) if value.len() <= INLINE => {
                bytes[..value.len()].copy_from_slice(value.as_bytes());
                // `value.len() <= INLINE < 256`.
                *len = value.len() as u8;
            }
            _ => *slot = Some(Value::new(value)),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Value::Shared(shared) => shared.as_bytes(),
        }
    }

    /// Whether this owner value holds `token`: equal to it, or `token` then `|`.
    pub(super) fn is_owned_by(&self, token: &str) -> bool {
        let bytes = self.as_bytes();
        let token = token.as_bytes();
        bytes.starts_with(token) && matches!(bytes.get(token.len()), None | Some(b'|'))
    }

    pub(super) fn to_string_lossless(&self) -> String {
        // Both forms hold bytes copied from a `&str`, so they are valid UTF-8.
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::Value;

    #[test]
    fn assign_reuses_the_inline_buffer_and_switches_forms_by_length() {
        let mut slot = None;
        Value::assign(&mut slot, "abc|1|host");
        assert_eq!(slot.as_ref().unwrap().to_string_lossless(), "abc|1|host");
        Value::assign(&mut slot, "x");
        assert_eq!(slot.as_ref().unwrap().to_string_lossless(), "x");
        let long = "y".repeat(300);
        Value::assign(&mut slot, &long);
        assert!(matches!(slot, Some(Value::Shared(_))));
        assert_eq!(slot.as_ref().unwrap().to_string_lossless(), long);
        Value::assign(&mut slot, "short");
        assert!(matches!(slot, Some(Value::Inline { .. })));
        assert_eq!(slot.as_ref().unwrap().to_string_lossless(), "short");
    }

    #[test]
    fn ownership_is_the_token_alone_or_the_token_then_a_bar() {
        let value = Value::new("tok|1|host");
        assert!(value.is_owned_by("tok"));
        assert!(!value.is_owned_by("to"));
        assert!(Value::new("tok").is_owned_by("tok"));
        assert!(!Value::new("token").is_owned_by("tok"));
    }
}
