//! Client-controlled text on its way into the log.
//!
//! Paths, header values and close reasons come from whoever opened the
//! socket. Written as they are, a newline forges a log line, a terminal
//! escape rewrites the operator's screen, and eight kilobytes of path drown
//! the line that matters. Every such string goes into the log through
//! [`Untrusted`], and nowhere else.

use std::fmt;

/// The most characters of one client string that reach the log; the rest
/// is replaced by an ellipsis.
pub(crate) const MAX_LOGGED_CHARS: usize = 128;

/// Displays a client-controlled string escaped (`str::escape_debug`: control
/// characters, quotes, backslashes and invisible characters as escapes) and
/// cut after [`MAX_LOGGED_CHARS`] characters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        for c in chars.by_ref().take(MAX_LOGGED_CHARS) {
            write!(f, "{}", c.escape_debug())?;
        }
        if chars.next().is_some() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// [`Untrusted`] for bytes that may not be UTF-8 (a header value): invalid
/// sequences show as U+FFFD.
pub(crate) fn untrusted_bytes(bytes: &[u8]) -> String {
    Untrusted(&String::from_utf8_lossy(bytes)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_quotes_are_escaped() {
        let shown = Untrusted("a\nb\r\"c\u{1b}[31m\u{202e}").to_string();
        assert_eq!(shown, "a\\nb\\r\\\"c\\u{1b}[31m\\u{202e}");
        assert!(!shown.contains('\n'));
    }

    #[test]
    fn long_strings_are_cut_with_an_ellipsis() {
        let shown = Untrusted(&"é".repeat(1000)).to_string();
        assert_eq!(shown, format!("{}…", "é".repeat(MAX_LOGGED_CHARS)));
        let exact = "x".repeat(MAX_LOGGED_CHARS);
        assert_eq!(Untrusted(&exact).to_string(), exact);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_shown_lossily() {
        assert_eq!(untrusted_bytes(b"ok\xff\n"), "ok\u{fffd}\\n");
    }
}
