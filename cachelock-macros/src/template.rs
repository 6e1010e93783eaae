//! The key template: `"job-<user.id>-<day>"`, parsed at expansion time.
//!
//! Pure string processing, no `syn`: every error carries the byte range of the template it
//! is about, so that the caller can point inside the string literal where the compiler
//! allows it.
//!
//! Grammar:
//!
//! - `<path>` is a placeholder: a parameter name (or `self`) followed by `.field` segments,
//!   each an identifier or a tuple index (`<pair.0>`).
//! - `<<` and `>>` stand for a literal `<` and `>`.
//! - Everything else is literal text.
//!
//! Two rules keep the formatted keys collision-free (see the escaping in
//! `cachelock::__private::KeyWriter`): two placeholders must be separated by literal text,
//! and that separator must not start with `%`, the escape character.

use std::ops::Range;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Literal text, escapes already resolved.
    Literal(String),
    /// A placeholder.
    Placeholder(Placeholder),
}

/// `<a.b.c>`: a parameter and a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placeholder {
    /// The segments: `["a", "b", "c"]`. The first is a parameter name or `self`.
    pub(crate) path: Vec<String>,
    /// Byte range of the whole placeholder (brackets included) in the template.
    pub(crate) range: Range<usize>,
}

impl Placeholder {
    /// The placeholder as written: `<a.b>`.
    pub(crate) fn display(&self) -> String {
        format!("<{}>", self.path.join("."))
    }
}

/// A template error: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub(crate) message: String,
    /// Byte range in the template.
    pub(crate) range: Range<usize>,
}

fn error(message: impl Into<String>, range: Range<usize>) -> TemplateError {
    TemplateError {
        message: message.into(),
        range,
    }
}

/// Parses a template into its segments (literal runs merged).
pub(crate) fn parse(template: &str) -> Result<Vec<Segment>, TemplateError> {
    if template.is_empty() {
        return Err(error(
            "the key template is empty: give the lock a name, like \"report-<day>\"",
            0..0,
        ));
    }
    let mut segments = Vec::new();
    let mut literal = String::new();
    let bytes = template.as_bytes();
    let mut i = 0;
    while i < template.len() {
        let c = template[i..].chars().next().unwrap_or_default();
        match c {
            '<' if bytes.get(i + 1) == Some(&b'<') => {
                literal.push('<');
                i += 2;
            }
            '>' if bytes.get(i + 1) == Some(&b'>') => {
                literal.push('>');
                i += 2;
            }
            '>' => {
                return Err(error(
                    "unescaped `>` in the key template: write `>>` for a literal `>`",
                    i..i + 1,
                ));
            }
            '<' => {
                let start = i;
                let Some(len) = template[start + 1..].find('>') else {
                    return Err(error(
                        "unclosed `<` in the key template: close the placeholder with `>`, or write `<<` for a literal `<`",
                        start..template.len(),
                    ));
                };
                let end = start + 1 + len + 1;
                let inner = &template[start + 1..end - 1];
                if inner.is_empty() {
                    return Err(error(
                        "empty placeholder `<>`: name a parameter, like `<id>`, or write `<<>>` for a literal `<>`",
                        start..end,
                    ));
                }
                let path = parse_path(inner).map_err(|message| error(message, start..end))?;
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(Segment::Placeholder(Placeholder {
                    path,
                    range: start..end,
                }));
                i = end;
            }
            _ => {
                literal.push(c);
                i += c.len_utf8();
            }
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    check_separators(&segments)?;
    Ok(segments)
}

/// `a.b.0` into `["a", "b", "0"]`.
fn parse_path(inner: &str) -> Result<Vec<String>, String> {
    let invalid = || {
        format!(
            "invalid placeholder `<{inner}>`: expected a parameter name or a field path like `<user.id>` (write `<<` for a literal `<`)"
        )
    };
    let mut path = Vec::new();
    for (index, part) in inner.split('.').enumerate() {
        let is_ident = part
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_alphabetic())
            && part.chars().all(|c| c == '_' || c.is_alphanumeric())
            && part != "_";
        let is_index = index > 0
            && !part.is_empty()
            && part.chars().all(|c| c.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'));
        if !(is_ident || is_index) {
            return Err(invalid());
        }
        if index > 0 && part == "self" {
            return Err(invalid());
        }
        path.push(part.to_owned());
    }
    Ok(path)
}

/// Placeholders must be separated by literal text that does not start with `%`.
fn check_separators(segments: &[Segment]) -> Result<(), TemplateError> {
    for pair in segments.windows(2) {
        if let [Segment::Placeholder(a), Segment::Placeholder(b)] = pair {
            return Err(error(
                format!(
                    "placeholders `{}` and `{}` need literal text between them (like `{}-{}`): otherwise two different argument values could give the same key",
                    a.display(),
                    b.display(),
                    a.display(),
                    b.display()
                ),
                a.range.start..b.range.end,
            ));
        }
    }
    for triple in segments.windows(3) {
        if let [Segment::Placeholder(_), Segment::Literal(text), Segment::Placeholder(b)] = triple {
            if text.starts_with('%') {
                return Err(error(
                    "the text between two placeholders cannot start with `%`: `%` is the escape character of argument values",
                    b.range.start - text.len()..b.range.start,
                ));
            }
        }
    }
    Ok(())
}

/// The characters escaped in argument values: `%` and the first character of every
/// separator between two placeholders.
pub(crate) fn reserved(segments: &[Segment]) -> Vec<char> {
    let mut reserved = vec!['%'];
    for triple in segments.windows(3) {
        if let [Segment::Placeholder(_), Segment::Literal(text), Segment::Placeholder(_)] = triple {
            if let Some(c) = text.chars().next() {
                if !reserved.contains(&c) {
                    reserved.push(c);
                }
            }
        }
    }
    reserved
}

/// A `{name}` in literal text where `name` is a parameter: python-cachelock's syntax for
/// what is `<name>` here, almost certainly a mistake (the key would not vary).
pub(crate) fn python_placeholder<'a>(text: &str, params: &'a [String]) -> Option<&'a str> {
    params
        .iter()
        .find(|param| text.contains(&format!("{{{param}}}")))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.to_owned())
    }

    fn ph(path: &[&str], range: Range<usize>) -> Segment {
        Segment::Placeholder(Placeholder {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            range,
        })
    }

    fn err(template: &str) -> TemplateError {
        parse(template).expect_err(template)
    }

    #[test]
    fn literal_only() {
        assert_eq!(parse("nightly").unwrap(), vec![lit("nightly")]);
    }

    #[test]
    fn placeholders_and_fields() {
        assert_eq!(
            parse("job-<a>-<user.id.0>").unwrap(),
            vec![
                lit("job-"),
                ph(&["a"], 4..7),
                lit("-"),
                ph(&["user", "id", "0"], 8..19)
            ]
        );
        assert_eq!(
            parse("<self.name>").unwrap(),
            vec![ph(&["self", "name"], 0..11)]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(parse("a<<b>>c").unwrap(), vec![lit("a<b>c")]);
        assert_eq!(
            parse("<<<x>>>").unwrap(),
            vec![lit("<"), ph(&["x"], 2..5), lit(">")]
        );
        assert_eq!(parse("<<>>").unwrap(), vec![lit("<>")]);
    }

    #[test]
    fn unicode_literal_and_ranges() {
        assert_eq!(
            parse("é-<a>→<b>").unwrap(),
            vec![lit("é-"), ph(&["a"], 3..6), lit("→"), ph(&["b"], 9..12)]
        );
    }

    #[test]
    fn errors_point_at_the_offending_part() {
        let e = err("a-<b");
        assert!(e.message.contains("unclosed `<`"), "{}", e.message);
        assert_eq!(e.range, 2..4);

        let e = err("x<>y");
        assert!(e.message.contains("empty placeholder"), "{}", e.message);
        assert_eq!(e.range, 1..3);

        let e = err("x>y");
        assert!(e.message.contains("unescaped `>`"), "{}", e.message);
        assert_eq!(e.range, 1..2);

        let e = err("k-< a >");
        assert!(
            e.message.contains("invalid placeholder `< a >`"),
            "{}",
            e.message
        );
        assert_eq!(e.range, 2..7);

        for bad in [
            "<a..b>", "<a.>", "<1a>", "<a.01>", "<a-b>", "<a.self>", "<_>", "<0>",
        ] {
            assert!(err(bad).message.contains("invalid placeholder"), "{bad}");
        }

        assert!(err("").message.contains("empty"));
    }

    #[test]
    fn placeholders_need_a_separator() {
        let e = err("k<a><b>");
        assert!(
            e.message.contains("need literal text between them"),
            "{}",
            e.message
        );
        assert_eq!(e.range, 1..7);

        let e = err("<a>%x<b>");
        assert!(e.message.contains("cannot start with `%`"), "{}", e.message);
        assert_eq!(e.range, 3..5);

        // `%` elsewhere is fine.
        assert!(parse("100%-<a>-%<b>%").is_ok());
    }

    #[test]
    fn python_placeholders_are_spotted() {
        let params = ["day".to_owned(), "self".to_owned()];
        assert_eq!(python_placeholder("report-{day}", &params), Some("day"));
        assert_eq!(python_placeholder("report-{month}", &params), None);
        assert_eq!(python_placeholder("report-day", &params), None);
    }

    #[test]
    fn reserved_characters() {
        let segments = parse("job-<a>-<b>/<c>:x").unwrap();
        assert_eq!(reserved(&segments), vec!['%', '-', '/']);
        assert_eq!(reserved(&parse("<a>").unwrap()), vec!['%']);
        // A prefix or suffix is not a separator: words stay readable.
        assert_eq!(reserved(&parse("job:<a>.x").unwrap()), vec!['%']);
    }
}
