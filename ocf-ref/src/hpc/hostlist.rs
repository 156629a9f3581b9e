//! Hostlist expressions as Slurm writes them: `n[01-16,20]`, `r[1-2]n[1-3]`, `a,b,n[3-4]`.
//!
//! [`expand`] turns an expression into node names, in order (several bracket groups in one
//! word multiply out, the first group outermost, as Slurm does); leading zeros are kept (the
//! width of a range is the width of its lower bound: `n[08-10]` is `n08 n09 n10`, `n[8-10]` is
//! `n8 n9 n10`). [`compress`] writes names back as one expression that [`expand`] turns into
//! the same names in the same order. Bad input is an [`HostlistError`] naming the byte
//! position and what was expected there.
//!
//! ```
//! use ocf_ref::hpc::hostlist::{compress, expand};
//! let names = expand("n[01-03,07],login1").unwrap();
//! assert_eq!(names, ["n01", "n02", "n03", "n07", "login1"]);
//! assert_eq!(compress(&names), "n[01-03,07],login1");
//! assert_eq!(expand("n[2-").unwrap_err().position, 4);
//! ```

/// The most names one expression may expand to (a guard against `n[0-999999999]`).
pub const MAX_HOSTS: usize = 65_536;

/// The longest number in a range, in digits (so it fits in a `u64`).
const MAX_DIGITS: usize = 18;

/// An expression that is not a hostlist: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad hostlist {expr:?} at byte {position}: {reason}")]
#[non_exhaustive]
pub struct HostlistError {
    /// The expression as given.
    pub expr: String,
    /// The byte offset of the fault (the expression's length when it ended too early).
    pub position: usize,
    /// What was wrong there.
    pub reason: String,
}

/// One `lo-hi` range of a bracket group, with the width its numbers are printed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    lo: u64,
    hi: u64,
    width: usize,
}

/// A piece of a word: literal text, or a bracket group of ranges.
#[derive(Debug)]
enum Piece {
    Text(String),
    Group(Vec<Range>),
}

/// The characters a host name may hold (Slurm's node names, and DNS names).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

struct Parser<'a> {
    expr: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, position: usize, reason: impl Into<String>) -> HostlistError {
        HostlistError {
            expr: self.expr.to_owned(),
            position,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn number(&mut self) -> Result<(u64, usize), HostlistError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.expr[start..self.pos];
        if digits.is_empty() {
            return Err(self.err(start, "expected a number"));
        }
        if digits.len() > MAX_DIGITS {
            return Err(self.err(start, format!("a number of more than {MAX_DIGITS} digits")));
        }
        let n = digits
            .parse::<u64>()
            .map_err(|e| self.err(start, format!("not a number: {e}")))?;
        Ok((n, digits.len()))
    }

    /// After `[`: ranges up to `]`.
    fn group(&mut self) -> Result<Vec<Range>, HostlistError> {
        let mut ranges = Vec::new();
        loop {
            let (lo, width) = self.number()?;
            let hi = if self.peek() == Some(b'-') {
                self.pos += 1;
                let at = self.pos;
                let (hi, _) = self.number()?;
                if hi < lo {
                    return Err(self.err(at, format!("range {lo}-{hi} goes down")));
                }
                hi
            } else {
                lo
            };
            ranges.push(Range { lo, hi, width });
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(ranges);
                }
                None => return Err(self.err(self.pos, "expected `,` or `]`, found the end")),
                Some(_) => return Err(self.err(self.pos, "expected `-`, `,` or `]`")),
            }
        }
    }

    /// One word: text and bracket groups up to a top-level `,` or the end.
    fn word(&mut self) -> Result<Vec<Piece>, HostlistError> {
        let start = self.pos;
        let mut pieces = Vec::new();
        let mut text = String::new();
        while let Some(b) = self.peek() {
            match b {
                b',' => break,
                b'[' => {
                    self.pos += 1;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Group(self.group()?));
                }
                _ => {
                    let c = self.expr[self.pos..].chars().next().unwrap_or('\u{0}');
                    if !name_char(c) {
                        return Err(self.err(self.pos, format!("{c:?} may not be in a host name")));
                    }
                    text.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        if pieces.is_empty() {
            return Err(self.err(start, "expected a host name"));
        }
        Ok(pieces)
    }
}

/// The names `expr` stands for, in order; duplicates are kept as written.
///
/// # Errors
/// A [`HostlistError`] naming the position: an empty expression or word, a character that
/// may not be in a host name, an unclosed or empty bracket, a range that goes down, or more
/// than [`MAX_HOSTS`] names in all.
pub fn expand(expr: &str) -> Result<Vec<String>, HostlistError> {
    let mut p = Parser {
        expr,
        bytes: expr.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        let word_start = p.pos;
        let pieces = p.word()?;
        let mut names = vec![String::new()];
        for piece in &pieces {
            match piece {
                Piece::Text(t) => names.iter_mut().for_each(|n| n.push_str(t)),
                Piece::Group(ranges) => {
                    let count: u64 = ranges.iter().map(|r| r.hi - r.lo + 1).sum();
                    let total = u64::try_from(names.len().saturating_add(out.len()))
                        .unwrap_or(u64::MAX)
                        .saturating_mul(count.max(1));
                    if total > MAX_HOSTS as u64 {
                        return Err(p.err(
                            word_start,
                            format!("expands to more than {MAX_HOSTS} names"),
                        ));
                    }
                    let mut next = Vec::new();
                    for n in &names {
                        for r in ranges {
                            for i in r.lo..=r.hi {
                                next.push(format!("{n}{i:0w$}", w = r.width));
                            }
                        }
                    }
                    names = next;
                }
            }
        }
        out.extend(names);
        if out.len() > MAX_HOSTS {
            return Err(p.err(
                word_start,
                format!("expands to more than {MAX_HOSTS} names"),
            ));
        }
        match p.peek() {
            Some(b',') => p.pos += 1,
            _ => return Ok(out),
        }
    }
}

/// A name split into its text and trailing number (`n07` is `n`, 7, width 2).
fn split_number(name: &str) -> Option<(&str, u64, usize)> {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > MAX_DIGITS {
        return None;
    }
    let (prefix, number) = name.split_at(name.len() - digits);
    Some((prefix, number.parse().ok()?, digits))
}

/// One expression for `names` that [`expand`] turns back into exactly `names`, in order:
/// neighbours with the same text before a trailing number share one bracket group, and
/// consecutive numbers of one width become a range.
///
/// Names are taken as they are: a name holding `[`, `]` or `,` makes an expression that
/// does not expand back (Slurm's node names never do).
pub fn compress<S: AsRef<str>>(names: &[S]) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut group: Option<(&str, Vec<Range>)> = None;
    let flush = |group: &mut Option<(&str, Vec<Range>)>, words: &mut Vec<String>| {
        if let Some((prefix, ranges)) = group.take() {
            let text: Vec<String> = ranges
                .iter()
                .map(|r| {
                    if r.lo == r.hi {
                        format!("{:0w$}", r.lo, w = r.width)
                    } else {
                        format!("{:0w$}-{:0w$}", r.lo, r.hi, w = r.width)
                    }
                })
                .collect();
            if let [only] = ranges.as_slice()
                && only.lo == only.hi
            {
                words.push(format!("{prefix}{}", text.join("")));
            } else {
                words.push(format!("{prefix}[{}]", text.join(",")));
            }
        }
    };
    for name in names {
        let name = name.as_ref();
        let Some((prefix, n, width)) = split_number(name) else {
            flush(&mut group, &mut words);
            words.push(name.to_owned());
            continue;
        };
        if let Some((p, ranges)) = &mut group
            && *p == prefix
        {
            if let Some(last) = ranges.last_mut()
                && last.hi.checked_add(1) == Some(n)
                && format!("{n:0w$}", w = last.width).len() == width
            {
                last.hi = n;
            } else {
                ranges.push(Range {
                    lo: n,
                    hi: n,
                    width,
                });
            }
            continue;
        }
        flush(&mut group, &mut words);
        group = Some((
            prefix,
            vec![Range {
                lo: n,
                hi: n,
                width,
            }],
        ));
    }
    flush(&mut group, &mut words);
    words.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slurm_forms() {
        assert_eq!(expand("n[01-03]").unwrap(), ["n01", "n02", "n03"]);
        assert_eq!(expand("n[8-10]").unwrap(), ["n8", "n9", "n10"]);
        assert_eq!(expand("n[08-10]").unwrap(), ["n08", "n09", "n10"]);
        assert_eq!(
            expand("r[1-2]n[1-2]").unwrap(),
            ["r1n1", "r1n2", "r2n1", "r2n2"]
        );
        assert_eq!(expand("a,b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(expand("n[2-3,7]").unwrap(), ["n2", "n3", "n7"]);
        assert_eq!(expand("n[2]-ib").unwrap(), ["n2-ib"]);
        assert_eq!(compress(&["n1", "n2", "n3", "n7"]), "n[1-3,7]");
        assert_eq!(compress(&["n3"]), "n3");
        assert_eq!(compress(&["n9", "n10", "x"]), "n[9-10],x");
        assert_eq!(compress(&["n09", "n10"]), "n[09-10]");
        assert_eq!(compress(&["n9", "n010"]), "n[9,010]");
        assert_eq!(compress(&["n098", "n099", "n100"]), "n[098-100]");
        assert_eq!(compress(&["n01", "n02", "n03"]), "n[01-03]");
    }

    #[test]
    fn errors_name_the_position() {
        let cases = [
            ("", 0),
            ("n[1-", 4),
            ("n[3-1]", 4),
            ("n[]", 2),
            ("a,,b", 2),
            ("n[1-2", 5),
            ("n 1", 1),
            ("n[1x]", 3),
            ("n[0-99999999]", 0),
        ];
        for (expr, pos) in cases {
            let e = expand(expr).unwrap_err();
            assert_eq!(e.position, pos, "{expr:?}: {e}");
            assert!(e.to_string().contains(&format!("byte {pos}")), "{e}");
        }
    }

    fn name() -> impl Strategy<Value = String> {
        ("[a-z][a-z0-9_.-]{0,4}", proptest::option::of("[0-9]{1,4}"))
            .prop_map(|(p, n)| format!("{p}{}", n.unwrap_or_default()))
    }

    proptest! {
        #[test]
        fn compress_then_expand_is_the_same_names(names in proptest::collection::vec(name(), 1..40)) {
            let expr = compress(&names);
            prop_assert_eq!(expand(&expr).unwrap(), names, "{}", expr);
        }

        #[test]
        fn ranges_round_trip(prefix in "[a-z]{1,3}", lo in 0u64..500, len in 0u64..50, width in 1usize..5) {
            let hi = lo + len;
            let expr = format!("{prefix}[{lo:0width$}-{hi}]");
            let names = expand(&expr).unwrap();
            prop_assert_eq!(names.len() as u64, len + 1);
            prop_assert_eq!(expand(&compress(&names)).unwrap(), names);
        }

        #[test]
        fn expand_never_panics(expr in "[a-z0-9\\[\\],-]{0,24}") {
            let _ = expand(&expr);
        }
    }
}
