//! Outside text (caller input, upstream answers) made fit for an error message or a log line.

/// Marks where text was cut, so a reader knows there was more.
const ELLIPSIS: char = '…';

/// At most `max_chars` characters of `text`, trimmed, an ellipsis last when it was cut, with
/// control characters and Unicode line separators made spaces. Outside text reaches callers'
/// error messages and our logs: unbounded it floods both, and a line break or an ANSI escape in
/// it could forge a log line or restyle a terminal.
pub(crate) fn sanitize(text: &str, max_chars: usize) -> String {
    let text = text.trim_matches(|c: char| c.is_whitespace() || is_line_breaking(c));
    let cut = text.chars().nth(max_chars).is_some();
    let keep = if cut {
        max_chars.saturating_sub(1)
    } else {
        max_chars
    };
    let mut clean: String = text
        .chars()
        .take(keep)
        .map(|c| if is_line_breaking(c) { ' ' } else { c })
        .collect();
    if cut && max_chars > 0 {
        clean.push(ELLIPSIS);
    }
    clean
}

fn is_line_breaking(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_trimmed() {
        assert_eq!(sanitize(" \n invalid_client \0", 64), "invalid_client");
        assert_eq!(sanitize("", 10), "");
        assert_eq!(sanitize("exactly", 7), "exactly");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_within_the_bound() {
        let cut = sanitize(&"x".repeat(500), 200);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with("x…"));
        assert_eq!(sanitize("abc", 0), "");
        assert_eq!(sanitize("abc", 1), "…");
    }

    #[test]
    fn multibyte_text_is_cut_on_a_character_boundary() {
        let cut = sanitize(&"é🦀".repeat(100), 5);
        assert_eq!(cut, "é🦀é🦀…");
    }

    #[test]
    fn line_breaks_and_escapes_cannot_forge_a_log_line() {
        let forged = "gpt\n2026-01-01T00:00:00Z  INFO request finished\r\x1b[31mred\u{2028}x\u{0}";
        let clean = sanitize(forged, 200);
        assert!(!clean.chars().any(is_line_breaking), "{clean:?}");
        assert_eq!(
            clean,
            "gpt 2026-01-01T00:00:00Z  INFO request finished  [31mred x"
        );
    }
}
