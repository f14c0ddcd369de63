//! Window table-valued functions (TUMBLE, HOP, CUMULATE, SESSION) in plans: their
//! specification, the logical node DataFusion carries, and the table functions SQL calls.

pub(crate) mod function;
mod node;
mod reference;

use std::fmt;

pub use function::{Relation, TableResolver, WindowTableFunction, register_window_functions};
pub use node::{WINDOW_END, WINDOW_START, WINDOW_TIME, WindowTvfNode};
pub use reference::{WINDOW_FUNCTIONS, WindowFunctionDoc, window_functions_markdown};

/// A duration in event time, in milliseconds.
pub type Millis = i64;

/// Which windows a row belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd)]
pub enum WindowKind {
    /// Fixed windows of `size`.
    Tumble {
        /// Window length.
        size: Millis,
    },
    /// Windows of `size` starting every `slide`.
    Hop {
        /// Distance between window starts.
        slide: Millis,
        /// Window length.
        size: Millis,
    },
    /// Windows growing by `step` from the start of each `size`-long period.
    Cumulate {
        /// Growth step.
        step: Millis,
        /// Length of the largest window.
        size: Millis,
    },
    /// Per key, rows closer than `gap` to each other form one window.
    Session {
        /// Inactivity gap.
        gap: Millis,
        /// `PARTITION BY` columns.
        partition_keys: Vec<String>,
    },
}

/// A window TVF's parameters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd)]
pub struct WindowSpec {
    /// The kind and sizes.
    pub kind: WindowKind,
    /// Window alignment offset (TUMBLE, HOP, CUMULATE).
    pub offset: Millis,
}

impl WindowSpec {
    /// The name Flink gives the function.
    pub fn function_name(&self) -> &'static str {
        match self.kind {
            WindowKind::Tumble { .. } => "TUMBLE",
            WindowKind::Hop { .. } => "HOP",
            WindowKind::Cumulate { .. } => "CUMULATE",
            WindowKind::Session { .. } => "SESSION",
        }
    }
}

fn fmt_ms(f: &mut fmt::Formatter<'_>, ms: Millis) -> fmt::Result {
    match ms {
        ms if ms % 3_600_000 == 0 => write!(f, "{} h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => write!(f, "{} min", ms / 60_000),
        ms if ms % 1000 == 0 => write!(f, "{} s", ms / 1000),
        ms => write!(f, "{ms} ms"),
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            WindowKind::Tumble { size } => {
                write!(f, "TUMBLE(size=")?;
                fmt_ms(f, *size)?;
            }
            WindowKind::Hop { slide, size } => {
                write!(f, "HOP(slide=")?;
                fmt_ms(f, *slide)?;
                write!(f, ", size=")?;
                fmt_ms(f, *size)?;
            }
            WindowKind::Cumulate { step, size } => {
                write!(f, "CUMULATE(step=")?;
                fmt_ms(f, *step)?;
                write!(f, ", size=")?;
                fmt_ms(f, *size)?;
            }
            WindowKind::Session {
                gap,
                partition_keys,
            } => {
                write!(f, "SESSION(gap=")?;
                fmt_ms(f, *gap)?;
                if !partition_keys.is_empty() {
                    write!(f, ", partition by {}", partition_keys.join(", "))?;
                }
            }
        }
        if self.offset != 0 {
            write!(f, ", offset=")?;
            fmt_ms(f, self.offset)?;
        }
        write!(f, ")")
    }
}
