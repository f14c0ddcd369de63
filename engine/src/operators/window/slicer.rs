//! Which slice a row falls in and which windows a slice belongs to, as Flink's slice
//! assigners define them. Slices are disjoint; a window is a run of slices:
//! TUMBLE's slices are its windows, HOP's are panes of gcd(size, slide), CUMULATE's are
//! steps. Times are event-time milliseconds; window ends are exclusive.

use magnetar_sql::window::{Millis, WindowKind, WindowSpec};

/// Flink's `TimeWindow.getWindowStartWithOffset`.
pub fn window_start(ts: i64, offset: Millis, size: Millis) -> i64 {
    let remainder = (ts - offset) % size;
    if remainder < 0 {
        ts - (remainder + size)
    } else {
        ts - remainder
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Slice and window arithmetic of a TUMBLE, HOP or CUMULATE spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slicer {
    /// Windows of `size`.
    Tumble { size: Millis, offset: Millis },
    /// Windows of `size` every `slide`, in panes of `pane`.
    Hop {
        slide: Millis,
        size: Millis,
        offset: Millis,
        pane: Millis,
    },
    /// Windows growing by `step` up to `size`.
    Cumulate {
        step: Millis,
        size: Millis,
        offset: Millis,
    },
}

impl Slicer {
    /// The slicer of `spec`; `None` for SESSION (not sliced).
    pub fn new(spec: &WindowSpec) -> Option<Slicer> {
        let offset = spec.offset;
        match &spec.kind {
            WindowKind::Tumble { size } => Some(Slicer::Tumble {
                size: *size,
                offset,
            }),
            WindowKind::Hop { slide, size } => Some(Slicer::Hop {
                slide: *slide,
                size: *size,
                offset,
                pane: gcd(*size, *slide),
            }),
            WindowKind::Cumulate { step, size } => Some(Slicer::Cumulate {
                step: *step,
                size: *size,
                offset,
            }),
            WindowKind::Session { .. } => None,
        }
    }

    /// Length of a slice.
    pub fn slice_size(&self) -> Millis {
        match *self {
            Slicer::Tumble { size, .. } => size,
            Slicer::Hop { pane, .. } => pane,
            Slicer::Cumulate { step, .. } => step,
        }
    }

    /// Slices in one (the largest) window.
    pub fn slices_per_window(&self) -> i64 {
        match *self {
            Slicer::Tumble { .. } => 1,
            Slicer::Hop { size, pane, .. } => size / pane,
            Slicer::Cumulate { step, size, .. } => size / step,
        }
    }

    /// The end of the slice holding event time `ts`.
    pub fn slice_end(&self, ts: i64) -> i64 {
        let size = self.slice_size();
        let offset = match *self {
            Slicer::Tumble { offset, .. }
            | Slicer::Hop { offset, .. }
            | Slicer::Cumulate { offset, .. } => offset,
        };
        window_start(ts, offset, size) + size
    }

    /// The end of the last window that holds the slice ending at `slice_end` (Flink's
    /// `getLastWindowEnd`): a row for a fired slice is late only once this has fired too.
    pub fn last_window_end(&self, slice_end: i64) -> i64 {
        match *self {
            Slicer::Tumble { .. } => slice_end,
            Slicer::Hop { size, pane, .. } => slice_end - pane + size,
            Slicer::Cumulate { step, size, offset } => {
                window_start(slice_end - step, offset, size) + size
            }
        }
    }

    /// The windows `(start, end)` holding the slice ending at `slice_end`, by end.
    pub fn windows_of_slice(&self, slice_end: i64) -> Vec<(i64, i64)> {
        match *self {
            Slicer::Tumble { size, .. } => vec![(slice_end - size, slice_end)],
            Slicer::Hop {
                slide,
                size,
                offset,
                pane,
            } => {
                let slice_start = slice_end - pane;
                // Window starts are aligned to the slide: from the last one at or before the
                // slice's start, back while the window still reaches the slice's end.
                let mut start = window_start(slice_start, offset, slide);
                let mut out = Vec::new();
                while start + size >= slice_end {
                    out.push((start, start + size));
                    start -= slide;
                }
                out.reverse();
                out
            }
            Slicer::Cumulate { step, size, offset } => {
                let start = window_start(slice_end - step, offset, size);
                (0..)
                    .map(|k| slice_end + k * step)
                    .take_while(|end| *end <= start + size)
                    .map(|end| (start, end))
                    .collect()
            }
        }
    }

    /// The slice ends of window `[start, end)`.
    pub fn slices_of_window(&self, start: i64, end: i64) -> impl Iterator<Item = i64> {
        let size = self.slice_size();
        (1..)
            .map(move |k| start + k * size)
            .take_while(move |e| *e <= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: WindowKind) -> WindowSpec {
        WindowSpec { kind, offset: 0 }
    }

    #[test]
    fn window_starts_like_flink() {
        assert_eq!(window_start(7, 0, 5), 5);
        assert_eq!(
            window_start(5, 0, 5),
            5,
            "a row at a window's end starts the next"
        );
        assert_eq!(window_start(-1, 0, 5), -5);
        assert_eq!(window_start(7, 1, 5), 6);
    }

    #[test]
    fn tumble_slices_are_windows() {
        let s = Slicer::new(&spec(WindowKind::Tumble { size: 10 })).expect("sliced");
        assert_eq!(s.slice_end(9), 10);
        assert_eq!(s.slice_end(10), 20);
        assert_eq!(s.windows_of_slice(20), vec![(10, 20)]);
        assert_eq!(s.last_window_end(20), 20);
    }

    #[test]
    fn hop_uses_gcd_panes() {
        let s = Slicer::new(&spec(WindowKind::Hop { slide: 4, size: 10 })).expect("sliced");
        assert_eq!(s.slice_size(), 2);
        assert_eq!(s.slice_end(3), 4);
        // Windows of 10 every 4: [-8,2) [-4,6) [0,10) [4,14) ... hold slice [2,4) if they
        // start at or before 2 and end at or after 4.
        assert_eq!(s.windows_of_slice(4), vec![(-4, 6), (0, 10)]);
        assert_eq!(
            s.slices_of_window(0, 10).collect::<Vec<_>>(),
            vec![2, 4, 6, 8, 10]
        );
        let minute = Slicer::new(&spec(WindowKind::Hop {
            slide: 1000,
            size: 60_000,
        }))
        .expect("sliced");
        assert_eq!(minute.windows_of_slice(1000).len(), 60);
        assert_eq!(minute.last_window_end(1000), 60_000);
    }

    #[test]
    fn cumulate_windows_grow_within_their_period() {
        let s = Slicer::new(&spec(WindowKind::Cumulate { step: 2, size: 6 })).expect("sliced");
        assert_eq!(s.slice_end(3), 4);
        assert_eq!(s.windows_of_slice(4), vec![(0, 4), (0, 6)]);
        assert_eq!(s.windows_of_slice(8), vec![(6, 8), (6, 10), (6, 12)]);
        assert_eq!(s.last_window_end(4), 6);
        assert_eq!(s.slices_of_window(6, 10).collect::<Vec<_>>(), vec![8, 10]);
    }
}
