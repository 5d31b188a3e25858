//! Loss, duplicate and reorder detection from each publisher's sequence
//! numbers, as one reader saw them.
//!
//! A server delivers one publisher's messages to a reader in the order they
//! were sent, so a reader expects each publisher's next number. A jump past
//! it leaves a gap (numbers presumed lost); a number below it either fills
//! a gap (it came late: reordered, not lost) or was seen before
//! (duplicated). What never arrives after the publisher's last message is
//! lost too, which only [`SequenceTracker::finish`] can tell, once the
//! number sent is known.

use std::collections::{BTreeSet, HashMap};

/// Gaps remembered per publisher, so a late message can be told from a
/// duplicate. Past this, further missing numbers are counted as lost
/// without being remembered: a reader that lost that much has failed
/// whatever comes late.
const MAX_REMEMBERED_GAPS: usize = 65_536;

/// Where a reader starts following a publisher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From sequence 0: the reader was there before the first message.
    FromZero,
    /// From the first message it sees: the reader joined mid-stream.
    FromFirstSeen,
}

/// What one observed message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The number expected next.
    InOrder,
    /// Past the number expected: this many before it are missing (so far).
    Gap(u64),
    /// A number missing until now: late, not lost.
    Late,
    /// A number seen before.
    Duplicate,
}

/// One publisher's stream as a reader saw it.
#[derive(Debug, Default)]
struct Stream {
    /// The number expected next: one past the highest seen.
    next: u64,
    /// Numbers below `next` not seen (yet).
    missing: BTreeSet<u64>,
    /// Numbers missing beyond [`MAX_REMEMBERED_GAPS`]: lost for good.
    forgotten: u64,
}

/// Counts what one reader saw of every publisher.
#[derive(Debug)]
pub struct SequenceTracker {
    start: Start,
    streams: HashMap<u32, Stream>,
    duplicated: u64,
    reordered: u64,
}

/// A reader's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SequenceCounts {
    /// Messages never seen: gaps not filled, and those after the last seen.
    pub lost: u64,
    /// Messages seen more than once (the repeats).
    pub duplicated: u64,
    /// Messages that filled a gap: late, but not lost.
    pub reordered: u64,
}

impl std::ops::AddAssign for SequenceCounts {
    fn add_assign(&mut self, other: Self) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
    }
}

impl SequenceTracker {
    /// A tracker for a reader that starts as `start` says.
    #[must_use]
    pub fn new(start: Start) -> Self {
        Self {
            start,
            streams: HashMap::new(),
            duplicated: 0,
            reordered: 0,
        }
    }

    /// Records message `sequence` of `publisher`.
    pub fn observe(&mut self, publisher: u32, sequence: u64) -> Observation {
        let start = self.start;
        let stream = self.streams.entry(publisher).or_insert_with(|| Stream {
            next: match start {
                Start::FromZero => 0,
                Start::FromFirstSeen => sequence,
            },
            ..Stream::default()
        });
        let observation = if sequence == stream.next {
            Observation::InOrder
        } else if sequence > stream.next {
            let gap = sequence - stream.next;
            for missing in stream.next..sequence {
                if stream.missing.len() < MAX_REMEMBERED_GAPS {
                    stream.missing.insert(missing);
                } else {
                    stream.forgotten += sequence - missing;
                    break;
                }
            }
            Observation::Gap(gap)
        } else if stream.missing.remove(&sequence) {
            Observation::Late
        } else {
            Observation::Duplicate
        };
        match observation {
            Observation::InOrder | Observation::Gap(_) => stream.next = sequence + 1,
            Observation::Late => self.reordered += 1,
            Observation::Duplicate => self.duplicated += 1,
        }
        observation
    }

    /// The totals, once every publisher has stopped: `sent(publisher)`
    /// says how many that publisher sent, so what came after the last
    /// message seen counts as lost. Publishers `expected` are counted even
    /// if this reader saw none of their messages (with [`Start::FromZero`]).
    #[must_use]
    pub fn finish(&self, expected: &[u32], sent: impl Fn(u32) -> Option<u64>) -> SequenceCounts {
        let mut lost = 0;
        for (publisher, stream) in &self.streams {
            let gaps = stream.missing.len() as u64 + stream.forgotten;
            let tail = sent(*publisher).map_or(0, |sent| sent.saturating_sub(stream.next));
            lost += gaps + tail;
        }
        if self.start == Start::FromZero {
            for publisher in expected {
                if !self.streams.contains_key(publisher) {
                    lost += sent(*publisher).unwrap_or(0);
                }
            }
        }
        SequenceCounts {
            lost,
            duplicated: self.duplicated,
            reordered: self.reordered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(tracker: &SequenceTracker, sent: &[u64]) -> SequenceCounts {
        let publishers: Vec<u32> = (0..sent.len() as u32).collect();
        tracker.finish(&publishers, |p| sent.get(p as usize).copied())
    }

    #[test]
    fn an_unbroken_stream_loses_nothing() {
        let mut tracker = SequenceTracker::new(Start::FromZero);
        for s in 0..100 {
            assert_eq!(tracker.observe(0, s), Observation::InOrder);
        }
        assert_eq!(counts(&tracker, &[100]), SequenceCounts::default());
    }

    #[test]
    fn a_gap_counts_as_lost() {
        let mut tracker = SequenceTracker::new(Start::FromZero);
        tracker.observe(0, 0);
        assert_eq!(tracker.observe(0, 4), Observation::Gap(3));
        tracker.observe(0, 5);
        assert_eq!(counts(&tracker, &[6]).lost, 3);
    }

    #[test]
    fn a_late_message_fills_its_gap() {
        let mut tracker = SequenceTracker::new(Start::FromZero);
        tracker.observe(0, 0);
        tracker.observe(0, 2);
        assert_eq!(tracker.observe(0, 1), Observation::Late);
        assert_eq!(
            counts(&tracker, &[3]),
            SequenceCounts {
                lost: 0,
                duplicated: 0,
                reordered: 1
            }
        );
    }

    #[test]
    fn a_repeat_is_a_duplicate_not_a_gap_filler() {
        let mut tracker = SequenceTracker::new(Start::FromZero);
        tracker.observe(0, 0);
        tracker.observe(0, 1);
        assert_eq!(tracker.observe(0, 1), Observation::Duplicate);
        assert_eq!(tracker.observe(0, 0), Observation::Duplicate);
        tracker.observe(0, 3);
        tracker.observe(0, 2);
        assert_eq!(tracker.observe(0, 2), Observation::Duplicate);
        assert_eq!(
            counts(&tracker, &[4]),
            SequenceCounts {
                lost: 0,
                duplicated: 3,
                reordered: 1
            }
        );
    }

    #[test]
    fn what_never_came_after_the_last_seen_is_lost() {
        let mut tracker = SequenceTracker::new(Start::FromZero);
        tracker.observe(0, 0);
        tracker.observe(1, 0);
        tracker.observe(1, 1);
        assert_eq!(counts(&tracker, &[5, 2, 7]).lost, 4 + 7);
    }

    #[test]
    fn publishers_are_followed_apart() {
        let mut tracker = SequenceTracker::new(Start::FromZero);
        for s in 0..10 {
            assert_eq!(tracker.observe(0, s), Observation::InOrder);
            assert_eq!(tracker.observe(1, s), Observation::InOrder);
        }
        assert_eq!(counts(&tracker, &[10, 10]), SequenceCounts::default());
    }

    #[test]
    fn a_late_joiner_starts_at_the_first_message_it_sees() {
        let mut tracker = SequenceTracker::new(Start::FromFirstSeen);
        assert_eq!(tracker.observe(7, 40), Observation::InOrder);
        assert_eq!(tracker.observe(7, 41), Observation::InOrder);
        assert_eq!(tracker.observe(7, 43), Observation::Gap(1));
        assert_eq!(tracker.finish(&[], |_| None).lost, 1);
    }

    #[test]
    fn a_huge_gap_is_counted_without_remembering_it_all() {
        let mut tracker = SequenceTracker::new(Start::FromZero);
        let jump = MAX_REMEMBERED_GAPS as u64 * 4;
        assert_eq!(tracker.observe(0, jump), Observation::Gap(jump));
        assert_eq!(counts(&tracker, &[jump + 1]).lost, jump);
    }
}
