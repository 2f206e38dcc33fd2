//! How deeply a request body nests arrays and objects, checked before it is parsed.
//!
//! serde_json refuses to build values nested deeper than 128 levels, but it skips a value the
//! bridge does not read (an ignored parameter, an unknown field of a message) with a loop that has
//! no such limit. Checking the whole body up front gives every part of it the same limit, and the
//! caller one clear 400 instead of a 200 or a 400 depending on where the nesting sits.

/// The deepest nesting accepted: serde_json's own recursion limit.
pub(crate) const MAX_DEPTH: usize = 128;

/// Where a body first nests deeper than allowed, as serde_json reports positions: 1-based line
/// and column (in bytes) of the bracket one level too deep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// Scans `body` once, outside strings, counting `[`/`{` against `]`/`}`. Malformed JSON is the
/// parser's business: this only answers whether any opening bracket sits deeper than `max`.
///
/// String contents, most of a prompt's bytes, are skipped with `memchr` to the next quote or
/// backslash rather than looked at byte by byte.
pub(crate) fn too_deep(body: &[u8], max: usize) -> Option<TooDeep> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = body.get(at) {
        match byte {
            b'"' => {
                // To the closing quote; an escape hides the byte after the backslash. A string
                // left open runs to the end of the body, where nothing more is counted.
                at += 1;
                loop {
                    let rest = body.get(at..)?;
                    at += memchr::memchr2(b'"', b'\\', rest)?;
                    if body[at] == b'"' {
                        break;
                    }
                    at += 2;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(position(body, at));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    None
}

fn position(body: &[u8], at: usize) -> TooDeep {
    let before = &body[..at];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |nl| nl + 1);
    TooDeep {
        line: before.iter().filter(|&&b| b == b'\n').count() + 1,
        column: at - line_start + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn the_limit_itself_is_accepted_one_more_is_not() {
        assert_eq!(too_deep(nested(MAX_DEPTH).as_bytes(), MAX_DEPTH), None);
        assert_eq!(
            too_deep(nested(MAX_DEPTH + 1).as_bytes(), MAX_DEPTH),
            Some(TooDeep {
                line: 1,
                column: MAX_DEPTH + 1
            })
        );
    }

    #[test]
    fn depth_is_counted_across_arrays_and_objects_not_siblings() {
        let body = br#"{"a": [{"b": [1]}], "c": {"d": [[]]}, "e": [[], [], []]}"#;
        assert_eq!(too_deep(body, 4), None);
        assert_eq!(
            too_deep(body, 3),
            Some(TooDeep {
                line: 1,
                column: 14
            })
        );
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        let body = br#"{"content": "[[[[{{{{ \" [[[[ \\", "x": ["]]]]"]}"#;
        assert_eq!(too_deep(body, 2), None);
        assert_eq!(too_deep(body, 1).map(|at| at.column), Some(41));
    }

    /// The scan this module started with, byte by byte: the reference for the fast one.
    fn reference(body: &[u8], max: usize) -> Option<TooDeep> {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        for (at, &byte) in body.iter().enumerate() {
            if in_string {
                match byte {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        return Some(position(body, at));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        None
    }

    #[test]
    fn agrees_with_the_byte_by_byte_scan() {
        let pieces: [&[u8]; 11] = [
            b"[", b"[", b"{", b"]", b"}", b"\"", b"\\", b"a", b"\n", b"\\\"", b"\"\\",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut deep, mut shallow) = (0, 0);
        for _ in 0..20_000 {
            let len = next() % 30;
            let body: Vec<u8> = (0..len)
                .flat_map(|_| {
                    pieces[(next() % pieces.len() as u64) as usize]
                        .iter()
                        .copied()
                })
                .collect();
            for max in [0, 1, 2, 3, 5] {
                let expected = reference(&body, max);
                assert_eq!(too_deep(&body, max), expected, "{body:?} {max}");
                if expected.is_some() {
                    deep += 1;
                } else {
                    shallow += 1;
                }
            }
        }
        assert!(deep > 10_000 && shallow > 10_000, "{deep} {shallow}");
    }

    #[test]
    fn positions_count_lines() {
        let body = b"{\n  \"m\": [\n    [[]]\n  ]\n}";
        assert_eq!(too_deep(body, 3), Some(TooDeep { line: 3, column: 6 }));
    }

    #[test]
    fn ten_thousand_levels_in_an_ignored_parameter_are_caught() {
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"metadata":{}}}"#,
            nested(10_000)
        );
        // serde_json itself skips it, unbounded: the gap this check closes.
        let parsed: Result<crate::openai::ChatCompletionRequest<'_>, _> =
            serde_json::from_str(&body);
        assert!(parsed.is_ok());
        assert_eq!(
            too_deep(body.as_bytes(), MAX_DEPTH).map(|at| at.line),
            Some(1)
        );
    }
}
