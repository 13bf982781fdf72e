//! supervisord's expansions: a value is a Python `%` format applied to a mapping of names
//! (`%(program_name)s`, `%(process_num)02d`, `%(ENV_HOME)s`, ...), and a `%` that is not
//! part of one (`date +%s`) makes supervisord refuse the file, as it does here.

use super::super::Host;
use crate::config::instances::escape;

/// A piece of an expanded value: text, or a `%(ENV_X)s` left for the service's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Env(String),
}

/// The names a value may use. Those that are `None` are not available for this key, as in
/// supervisord (no `process_num` before the processes are made, for one).
#[derive(Clone, Copy, Debug)]
pub struct Names<'a> {
    pub here: &'a str,
    pub host: &'a Host,
    pub program_name: Option<&'a str>,
    pub group_name: Option<&'a str>,
    pub process_num: Option<i64>,
    pub numprocs: Option<i64>,
    /// `%(process_num)` becomes tend's `{instance}` placeholder (for a service with
    /// `instances`), or an error where that cannot say the same.
    pub instance: bool,
}

/// What an expansion took from the machine tend import runs on, for the notes.
#[derive(Debug, Default)]
pub struct Used {
    /// Variables read from the environment now (`%(ENV_X)s` outside a command).
    pub env: Vec<String>,
    /// `%(host_node_name)s`.
    pub host_node_name: bool,
}

enum Value<'a> {
    Text(&'a str),
    Number(i64),
}

/// One `%(name)FLAGS WIDTH .PRECISION TYPE`.
struct Spec<'t> {
    name: &'t str,
    left: bool,
    zero: bool,
    sign: Option<char>,
    width: usize,
    precision: Option<usize>,
    conversion: char,
}

impl Names<'_> {
    /// The value with every name filled in, `%(ENV_X)s` from the host's environment.
    pub fn expand(&self, text: &str, used: &mut Used) -> Result<String, String> {
        let pieces = self.format(text, false, used)?;
        Ok(pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t,
                Piece::Env(name) => name,
            })
            .collect())
    }

    /// The value with every name filled in except `%(ENV_X)s`, kept as [`Piece::Env`] so
    /// that it can be read when the service starts, as supervisord reads it when it starts.
    pub fn pieces(&self, text: &str, used: &mut Used) -> Result<Vec<Piece>, String> {
        self.format(text, true, used)
    }

    fn format(&self, text: &str, env_later: bool, used: &mut Used) -> Result<Vec<Piece>, String> {
        let mut pieces = Vec::new();
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            // Text that tend would take for its placeholder stays text.
            out.push_str(&escape(&rest[..at]));
            let (spec, after) = parse(&rest[at + 1..])?;
            rest = after;
            let Some(spec) = spec else {
                out.push('%');
                continue;
            };
            if let Some(var) = spec.name.strip_prefix("ENV_") {
                if env_later && spec.is_plain_string() {
                    pieces.push(Piece::Text(std::mem::take(&mut out)));
                    pieces.push(Piece::Env(var.to_string()));
                    continue;
                }
                let Some(value) = self.host.env.get(var) else {
                    return Err(format!(
                        "%({})s: {var} is not set in tend import's environment (supervisord would refuse to start without it): set it and import again",
                        spec.name
                    ));
                };
                used.env.push(var.to_string());
                out.push_str(&escape(&spec.render(Value::Text(value))?));
                continue;
            }
            if spec.name == "process_num" && self.instance {
                out.push_str(&spec.placeholder()?);
                continue;
            }
            let value = match spec.name {
                "here" => Some(Value::Text(self.here)),
                "program_name" => self.program_name.map(Value::Text),
                "group_name" => self.group_name.map(Value::Text),
                "process_num" => self.process_num.map(Value::Number),
                "numprocs" => self.numprocs.map(Value::Number),
                "host_node_name" => {
                    used.host_node_name = true;
                    let host = self.host.hostname.as_deref();
                    Some(Value::Text(host.ok_or(
                        "%(host_node_name)s: this machine's host name cannot be read",
                    )?))
                }
                _ => None,
            };
            let Some(value) = value else {
                return Err(format!(
                    "%({})s is not a name supervisord knows here (it would refuse the file)",
                    spec.name
                ));
            };
            out.push_str(&escape(&spec.render(value)?));
        }
        out.push_str(&escape(rest));
        pieces.push(Piece::Text(out));
        pieces.retain(|p| *p != Piece::Text(String::new()));
        Ok(pieces)
    }
}

/// The widest padding `%(name)Ns` may ask for.
const MAX_WIDTH: usize = 4096;

/// What follows a `%`: `None` for `%%`, else the spec; and the text after it.
fn parse(text: &str) -> Result<(Option<Spec<'_>>, &str), String> {
    if let Some(rest) = text.strip_prefix('%') {
        return Ok((None, rest));
    }
    let Some(inner) = text.strip_prefix('(') else {
        return Err(
            "a `%` that is neither `%%` nor `%(name)s` (supervisord refuses it; write `%%` for a percent sign)"
                .to_string(),
        );
    };
    // Python lets the name hold balanced parentheses.
    let mut depth = 1;
    let close = inner.char_indices().find_map(|(i, c)| {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        (depth == 0).then_some(i)
    });
    let Some(close) = close else {
        return Err("a `%(` without its `)`".to_string());
    };
    let name = &inner[..close];
    let mut rest = &inner[close + 1..];
    let mut spec = Spec {
        name,
        left: false,
        zero: false,
        sign: None,
        width: 0,
        precision: None,
        conversion: 's',
    };
    while let Some(c) = rest.chars().next().filter(|c| "-+ #0".contains(*c)) {
        match c {
            '-' => spec.left = true,
            '0' => spec.zero = true,
            '+' => spec.sign = Some('+'),
            ' ' => spec.sign = spec.sign.or(Some(' ')),
            _ => {}
        }
        rest = &rest[1..];
    }
    let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = digits(rest);
    let width = &rest[..n];
    // Python pads to any width; Rust's formatting panics past 65,535 (found by fuzzing), and
    // no configuration pads a value that far: such a width is refused, not a panic or a
    // huge string.
    spec.width = match width.parse::<usize>() {
        Err(_) if width.is_empty() => 0,
        Ok(w) if w <= MAX_WIDTH => w,
        _ => {
            return Err(format!(
                "`%({name})`: a width of {width} (tend import pads to {MAX_WIDTH} at most)"
            ));
        }
    };
    rest = &rest[n..];
    if let Some(after) = rest.strip_prefix('.') {
        let n = digits(after);
        spec.precision = Some(after[..n].parse().unwrap_or(0));
        rest = &after[n..];
    }
    rest = rest.trim_start_matches(['h', 'l', 'L']);
    let Some(conversion) = rest.chars().next() else {
        return Err(format!("`%({name})` without a type such as `s` or `d`"));
    };
    spec.conversion = conversion;
    Ok((Some(spec), &rest[conversion.len_utf8()..]))
}

impl Spec<'_> {
    /// `%(NAME)s` with nothing between: the one form whose value can be left to the start.
    fn is_plain_string(&self) -> bool {
        self.conversion == 's'
            && !self.left
            && !self.zero
            && self.sign.is_none()
            && self.width == 0
            && self.precision.is_none()
    }

    /// `%(process_num)d` as tend's placeholder: `{instance}`, or `{instance:0W}` for a
    /// width padded with zeros.
    fn placeholder(&self) -> Result<String, String> {
        let number = matches!(self.conversion, 'd' | 'i' | 'u');
        let plain = !self.left && self.sign.is_none() && self.precision.is_none();
        match (self.conversion, self.width) {
            ('s' | 'd' | 'i' | 'u', 0 | 1) if plain => Ok("{instance}".to_string()),
            (_, width) if number && plain && self.zero => Ok(format!("{{instance:0{width}}}")),
            _ => Err(format!(
                "`%({})` is written in a way tend's {{instance}} cannot say (it pads with zeros only: `{{instance}}`, `{{instance:02}}`)",
                self.name
            )),
        }
    }

    fn render(&self, value: Value<'_>) -> Result<String, String> {
        let body = match (self.conversion, value) {
            ('s', Value::Text(t)) => match self.precision {
                Some(p) => t.chars().take(p).collect(),
                None => t.to_string(),
            },
            ('s', Value::Number(n)) => n.to_string(),
            ('d' | 'i' | 'u', Value::Number(n)) => {
                let sign = if n < 0 { Some('-') } else { self.sign };
                let digits = n.unsigned_abs().to_string();
                let sign = sign.map(String::from).unwrap_or_default();
                if self.zero && !self.left {
                    let width = self.width.saturating_sub(sign.len());
                    return Ok(format!("{sign}{digits:0>width$}"));
                }
                format!("{sign}{digits}")
            }
            ('d' | 'i' | 'u', Value::Text(_)) => {
                return Err(format!(
                    "%({})d needs a number, and it is text (supervisord would refuse it): use %({})s",
                    self.name, self.name
                ));
            }
            (c, _) => {
                return Err(format!(
                    "`%({}){c}`: tend import reads only the `s` and `d` conversions",
                    self.name
                ));
            }
        };
        let width = self.width;
        Ok(if self.left {
            format!("{body:<width$}")
        } else {
            format!("{body:>width$}")
        })
    }
}
