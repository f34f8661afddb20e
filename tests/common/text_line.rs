//! Reads the fields of a text log line the way a logfmt reader does, to tell what a line really
//! says.

/// The `name=value` fields of `tail` (what follows a line's message), in order, with quoted
/// values decoded: a value is bare up to the next space, or a double-quoted string whose
/// backslash escapes are Rust's (`\n`, `\"`, `\u{1b}`...). An error names what does not read
/// as fields.
pub fn fields(tail: &str) -> Result<Vec<(String, String)>, String> {
    let mut fields = Vec::new();
    let mut rest = tail;
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return Ok(fields);
        }
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("no `=` in {rest:?}"))?;
        if name.is_empty() || name.contains([' ', '"']) {
            return Err(format!("not a field name: {name:?}"));
        }
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => quoted_value(quoted)?,
            None => {
                let end = after.find(' ').unwrap_or(after.len());
                (after[..end].to_owned(), &after[end..])
            }
        };
        if !after.is_empty() && !after.starts_with(' ') {
            return Err(format!("no space after the value of {name:?}: {after:?}"));
        }
        fields.push((name.to_owned(), value));
        rest = after;
    }
}

/// The decoded value of a quoted string whose opening quote is already read, and what follows
/// its closing quote.
fn quoted_value(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[at + 1..])),
            '\\' => {
                let (_, escape) = chars.next().ok_or("a lone backslash")?;
                value.push(match escape {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    '0' => '\0',
                    '\\' | '"' | '\'' => escape,
                    'u' => {
                        let hex: String = chars
                            .by_ref()
                            .map(|(_, c)| c)
                            .skip(1)
                            .take_while(|&c| c != '}')
                            .collect();
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("a bad \\u escape: {hex:?}"))?
                    }
                    other => return Err(format!("an unknown escape: \\{other}")),
                });
            }
            c if c.is_control() => return Err(format!("a raw control character: {c:?}")),
            c => value.push(c),
        }
    }
    Err(format!("an unterminated string: {text:?}"))
}
