//! The window table functions as users see them: syntax and meaning, for the README's
//! generated reference (a test checks that every function the parser accepts is here).

/// One window table function's reference entry.
#[derive(Debug, Clone, Copy)]
pub struct WindowFunctionDoc {
    /// The function name, as written in SQL.
    pub name: &'static str,
    /// The call, with optional arguments in brackets.
    pub syntax: &'static str,
    /// What windows it makes.
    pub meaning: &'static str,
}

/// Every window table function, in the order the README lists them.
pub const WINDOW_FUNCTIONS: &[WindowFunctionDoc] = &[
    WindowFunctionDoc {
        name: "TUMBLE",
        syntax: "TUMBLE(TABLE t, DESCRIPTOR(ts), size [, offset])",
        meaning: "Fixed, non-overlapping windows of `size`; each row is in exactly one. \
                  Windows start at multiples of `size` from the epoch, shifted by `offset`.",
    },
    WindowFunctionDoc {
        name: "HOP",
        syntax: "HOP(TABLE t, DESCRIPTOR(ts), slide, size [, offset])",
        meaning: "Windows of `size` starting every `slide` (`size` a multiple of `slide`); \
                  each row is in `size / slide` windows. Kept as slide-sized panes.",
    },
    WindowFunctionDoc {
        name: "CUMULATE",
        syntax: "CUMULATE(TABLE t, DESCRIPTOR(ts), step, size [, offset])",
        meaning: "Windows that share a start and grow by `step` up to `size` (`size` a \
                  multiple of `step`): the running totals of a tumbling window, fired every step.",
    },
    WindowFunctionDoc {
        name: "SESSION",
        syntax: "SESSION(TABLE t [PARTITION BY key [, ...]], DESCRIPTOR(ts), gap)",
        meaning: "Per key, rows closer than `gap` to each other form one window; a row that \
                  bridges two sessions merges them. The window ends `gap` after its last row.",
    },
];

/// The README table of window functions.
pub fn window_functions_markdown() -> String {
    let mut out = String::from("| function | windows |\n|---|---|\n");
    for f in WINDOW_FUNCTIONS {
        out.push_str(&format!("| `{}` | {} |\n", f.syntax, f.meaning));
    }
    out
}
