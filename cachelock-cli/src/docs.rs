//! `cachelock completions SHELL` and `cachelock man [COMMAND]`: what the command line says
//! about itself, for shells and for `man`.
//!
//! Both are made from the same clap definition as `--help` ([`crate::cli`]), so they never
//! drift from it. The man page adds to what `clap_mangen` renders the help's closing
//! sections (stores, exit codes, examples) as roff sections of their own, with their
//! indented blocks kept as they are written.

use std::io::Write;

use clap::{Command, CommandFactory};

use crate::cli::{self, Cli, CompletionsArgs, ManArgs, STORE_HEADING_HERE};
use crate::exit::{Failure, OK};

/// `cachelock completions SHELL`: the completion script on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<u8, Failure> {
    let mut command = cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "cachelock", &mut out);
    print(&out)
}

/// `cachelock man [COMMAND]`: cachelock(1), or cachelock-COMMAND(1), in roff on stdout.
pub fn man(args: &ManArgs) -> Result<u8, Failure> {
    let page = render(args.command.as_deref())?;
    print(page.as_bytes())
}

fn print(bytes: &[u8]) -> Result<u8, Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(OK),
        // `cachelock man | head` closes the pipe early: not an error worth a message.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(OK),
        Err(error) => Err(Failure::internal(format!(
            "cannot write to stdout: {error}"
        ))),
    }
}

/// The man page of cachelock, or of one of its commands.
pub fn render(command: Option<&str>) -> Result<String, Failure> {
    let root = cli::built(Cli::command().disable_help_subcommand(true));
    let page = match command {
        None => root.clone(),
        Some(name) => root.find_subcommand(name).cloned().ok_or_else(|| {
            let names: Vec<&str> = root.get_subcommands().map(Command::get_name).collect();
            Failure::usage(format!(
                "no command `{name}` (the man pages: cachelock, and {})",
                names.join(", ")
            ))
        })?,
    };
    let page = page.mut_args(|arg| {
        if arg
            .get_help_heading()
            .is_some_and(|h| h.starts_with(STORE_HEADING_HERE))
        {
            arg.help_heading(STORE_HEADING_HERE)
        } else {
            arg
        }
    });
    let after_help = page.get_after_help().map(ToString::to_string);
    let (intro, sections) = split_after_help(after_help.as_deref().unwrap_or(""));
    let is_root = command.is_none();

    let man = clap_mangen::Man::new(page.clone())
        .source(format!("cachelock {}", env!("CARGO_PKG_VERSION")))
        .manual("cachelock");
    let mut out = Vec::new();
    let io = |e: std::io::Error| Failure::internal(format!("cannot render the man page: {e}"));
    man.render_title(&mut out).map_err(io)?;
    man.render_name_section(&mut out).map_err(io)?;
    man.render_synopsis_section(&mut out).map_err(io)?;
    man.render_description_section(&mut out).map_err(io)?;
    let mut text = String::from_utf8_lossy(&out).into_owned();
    for paragraph in &intro {
        text.push_str(&roff_paragraph(paragraph));
    }
    out.clear();
    if page.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out).map_err(io)?;
    }
    if page.get_subcommands().any(|c| !c.is_hide_set()) {
        man.render_subcommands_section(&mut out).map_err(io)?;
    }
    text.push_str(&String::from_utf8_lossy(&out));
    for (heading, paragraphs) in &sections {
        text.push_str(&format!(".SH \"{}\"\n", roff_text(&heading.to_uppercase())));
        for paragraph in paragraphs {
            text.push_str(&roff_paragraph(paragraph));
        }
    }
    if is_root {
        out.clear();
        man.render_version_section(&mut out).map_err(io)?;
        text.push_str(&String::from_utf8_lossy(&out));
    } else {
        text.push_str(
            ".SH \"SEE ALSO\"\n\\fBcachelock\\fR(1): the stores, logging and exit codes\n",
        );
    }
    // Each piece clap_mangen rendered opens with the same definition of the apostrophe
    // string: keep the first one only.
    let first = text
        .find(APOSTROPHE_PREAMBLE)
        .map_or(0, |at| at + APOSTROPHE_PREAMBLE.len());
    let rest = text[first..].replace(APOSTROPHE_PREAMBLE, "");
    text.truncate(first);
    text.push_str(&rest);
    Ok(text)
}

/// What `roff` puts at the start of every piece it renders, for `\*(Aq`.
const APOSTROPHE_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// A help text's paragraphs (separated by blank lines), as lines.
type Paragraph = Vec<String>;

/// Splits a help's closing text into the paragraphs before its first heading and its
/// sections: a paragraph whose first line is not indented and ends with `:`, followed by
/// indented lines, starts a section named by that line (up to ` (` or the colon); later
/// paragraphs without a heading belong to the section before them.
fn split_after_help(text: &str) -> (Vec<Paragraph>, Vec<(String, Vec<Paragraph>)>) {
    let mut intro = Vec::new();
    let mut sections: Vec<(String, Vec<Paragraph>)> = Vec::new();
    for block in text.split("\n\n") {
        let lines: Vec<String> = block.lines().map(str::to_owned).collect();
        let Some(first) = lines.first() else { continue };
        let heading =
            (!first.starts_with(' ') && first.ends_with(':') && lines.len() > 1).then(|| {
                let name = first.trim_end_matches(':');
                name.split(" (").next().unwrap_or(name).to_owned()
            });
        match heading {
            Some(heading) => sections.push((heading, vec![lines[1..].to_vec()])),
            None => match sections.last_mut() {
                Some((_, paragraphs)) => paragraphs.push(lines),
                None => intro.push(lines),
            },
        }
    }
    (intro, sections)
}

/// A paragraph in roff: prose (no indented line) is filled; anything indented (tables,
/// examples) is kept line by line, as written.
fn roff_paragraph(lines: &[String]) -> String {
    let mut out = String::from(".PP\n");
    if lines.iter().all(|line| !line.starts_with(' ')) {
        for line in lines {
            out.push_str(&roff_line(line));
        }
    } else {
        let indent = lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        out.push_str(".nf\n");
        for line in lines {
            out.push_str(&roff_line(line.get(indent..).unwrap_or(line.trim_start())));
        }
        out.push_str(".fi\n");
    }
    out
}

/// One text line: roff's escape character, dashes and quotes escaped, and a line starting
/// with `.` or `'` kept from being read as a request.
fn roff_line(line: &str) -> String {
    let text = roff_text(line);
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}\n")
    } else {
        format!("{text}\n")
    }
}

fn roff_text(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .replace('\'', "\\(aq")
        .replace('"', "\\(dq")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders() {
        let root = render(None).unwrap();
        assert!(root.starts_with(".ie "), "{root}");
        assert!(root.contains("\n.TH cachelock 1 "), "{root}");
        assert_eq!(root.matches(APOSTROPHE_PREAMBLE).count(), 1, "{root}");
        for section in ["STORES", "EXIT CODES", "LOCK STORE", "SUBCOMMANDS"] {
            assert!(
                root.contains(&format!(".SH \"{section}\""))
                    || root.contains(&format!(".SH {section}")),
                "{section}: {root}"
            );
        }
        for command in cli::command()
            .get_subcommands()
            .filter(|c| c.get_name() != "help")
        {
            let page = render(Some(command.get_name())).unwrap();
            let title = format!("\n.TH cachelock-{} 1 ", command.get_name());
            assert!(page.contains(&title), "{title}: {page}");
            assert!(page.contains("SEE ALSO"), "{page}");
        }
        assert_eq!(render(Some("nope")).unwrap_err().code, crate::exit::USAGE);
    }

    #[test]
    fn indented_blocks_stay_as_written_and_prose_is_filled() {
        let (intro, sections) =
            split_after_help("Some prose\nover two lines.\n\nExamples:\n  a \\\n      b\n\nMore.");
        assert_eq!(
            intro,
            vec![vec!["Some prose".to_owned(), "over two lines.".to_owned()]]
        );
        assert_eq!(sections.len(), 1);
        assert_eq!(sections[0].0, "Examples");
        assert_eq!(
            roff_paragraph(&sections[0].1[0]),
            ".PP\n.nf\na \\e\n    b\n.fi\n"
        );
        assert_eq!(roff_paragraph(&sections[0].1[1]), ".PP\nMore.\n");
        assert_eq!(roff_line(".hidden -x 'q'"), "\\&.hidden \\-x \\(aqq\\(aq\n");
    }
}
