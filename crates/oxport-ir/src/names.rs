//! Node names as FX makes them.
use std::collections::{HashMap, HashSet};

/// FX's `_Namespace`: hands out unique, legal Python identifiers with `_N` suffixes, as FX names graph
/// nodes (`add`, `add_1`; `sum` becomes `sum_1` because `sum` is a builtin).
#[derive(Default, Debug, Clone)]
pub struct Namespace {
    pub(crate) used: HashSet<String>,
    pub(crate) base_count: HashMap<String, u64>,
}

/// Python keywords: an argument with such a name cannot be passed by keyword.
pub(crate) const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// FX's `_illegal_names` (keywords, Python 3.11 builtins, FX's custom builtins), sorted: names a node
/// may not take.
#[rustfmt::skip]
const ILLEGAL_NAMES: &[&str] = &[
"ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BaseExceptionGroup",
"BlockingIOError", "BrokenPipeError", "BufferError", "BytesWarning", "ChildProcessError",
"ConnectionAbortedError", "ConnectionError", "ConnectionRefusedError", "ConnectionResetError",
"DeprecationWarning", "EOFError", "Ellipsis", "EncodingWarning", "EnvironmentError", "Exception",
"ExceptionGroup", "False", "FileExistsError", "FileNotFoundError", "FloatingPointError",
"FutureWarning", "GeneratorExit", "IOError", "ImportError", "ImportWarning", "IndentationError",
"IndexError", "InterruptedError", "IsADirectoryError", "KeyError", "KeyboardInterrupt",
"LookupError", "MemoryError", "ModuleNotFoundError", "NameError", "None", "NoneType",
"NotADirectoryError", "NotImplemented", "NotImplementedError", "OSError", "OverflowError",
"PendingDeprecationWarning", "PermissionError", "ProcessLookupError", "RecursionError",
"ReferenceError", "ResourceWarning", "RuntimeError", "RuntimeWarning", "StopAsyncIteration",
"StopIteration", "SyntaxError", "SyntaxWarning", "SystemError", "SystemExit", "TabError",
"TimeoutError", "True", "TypeError", "UnboundLocalError", "UnicodeDecodeError",
"UnicodeEncodeError", "UnicodeError", "UnicodeTranslateError", "UnicodeWarning", "UserWarning",
"ValueError", "Warning", "ZeroDivisionError", "__build_class__", "__debug__", "__doc__",
"__import__", "__loader__", "__name__", "__package__", "__spec__", "abs", "aiter", "all", "and",
"anext", "any", "as", "ascii", "assert", "async", "await", "bin", "bool", "break", "breakpoint",
"bytearray", "bytes", "callable", "chr", "class", "classmethod", "compile", "complex", "continue",
"copyright", "credits", "def", "del", "delattr", "device", "dict", "dir", "divmod", "elif", "else",
"enumerate", "eval", "except", "exec", "exit", "filter", "finally", "float", "for", "format",
"from", "frozenset", "fx_pytree", "getattr", "global", "globals", "hasattr", "hash", "help", "hex",
"id", "if", "import", "in", "inf", "input", "int", "is", "isinstance", "issubclass", "iter",
"lambda", "len", "license", "list", "locals", "map", "max", "memoryview", "min", "nan", "next",
"nonlocal", "not", "object", "oct", "open", "or", "ord", "pass", "pow", "print", "property",
"pytree", "quit", "raise", "range", "repr", "return", "reversed", "round", "set", "setattr",
"slice", "sorted", "staticmethod", "str", "sum", "super", "torch", "try", "tuple", "type", "vars",
"while", "with", "yield", "zip",
];

impl Namespace {
    /// Takes `name` exactly as given (export keeps forward's argument names, even `input`), unless it is
    /// taken, in which case it is made unique like [`Namespace::create_name`].
    pub fn take_exact(&mut self, name: &str) -> String {
        if name.is_empty() || self.used.contains(name) {
            return self.create_name(name);
        }
        self.used.insert(name.to_string());
        name.to_string()
    }

    /// FX's `_Namespace.create_name`: `candidate` made legal and unique.
    pub fn create_name(&mut self, candidate: &str) -> String {
        let mut c = candidate.to_string();
        if split_name(&c).is_none() {
            c = illegal_chars_to_underscore(&c);
            if c.is_empty() {
                c = "_unnamed".into();
            }
            if c.starts_with(|ch: char| ch.is_ascii_digit()) {
                c = format!("_{c}");
            }
        }
        let (base, num) = split_name(&c).unwrap_or_else(|| (c.clone(), None));
        let mut num = match num {
            Some(n) if !self.used.contains(&c) => n,
            _ => {
                let mut n = *self.base_count.get(&base).unwrap_or(&0);
                if ILLEGAL_NAMES.binary_search(&c.as_str()).is_ok() {
                    n += 1;
                    c = format!("{base}_{n}");
                }
                n
            }
        };
        while self.used.contains(&c) {
            num += 1;
            c = format!("{base}_{num}");
        }
        self.used.insert(c.clone());
        self.base_count.insert(base, num);
        c
    }
}

/// Replaces each run of characters illegal in identifiers by one `_`.
fn illegal_chars_to_underscore(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() || ch == '_' {
            out.push(ch);
            in_run = false;
        } else if !in_run {
            out.push('_');
            in_run = true;
        }
    }
    out
}

/// FX's `^([a-zA-Z_][0-9a-zA-Z_]*?)(?:_(\d+))?$`: (base, numeric suffix), or None if not an identifier.
fn split_name(s: &str) -> Option<(String, Option<u64>)> {
    let first = s.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    if let Some(pos) = s.rfind('_') {
        let digits = &s[pos + 1..];
        if pos > 0 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = digits.parse::<u64>() {
                return Some((s[..pos].to_string(), Some(n)));
            }
        }
    }
    Some((s.to_string(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_suffixes_like_fx() {
        let mut ns = Namespace::default();
        assert_eq!(ns.create_name("add"), "add");
        assert_eq!(ns.create_name("add"), "add_1");
        assert_eq!(ns.create_name("add_1"), "add_2");
        assert_eq!(ns.create_name("sum"), "sum_1");
        assert_eq!(
            ns.create_name("max_pool2d_with_indices.default"),
            "max_pool2d_with_indices_default"
        );
        assert_eq!(ns.create_name("getitem_3"), "getitem_3");
        assert_eq!(ns.create_name("getitem"), "getitem");
    }
}
