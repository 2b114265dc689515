//! Deciding whether the end of the log a master reached is the real end.
//!
//! Tailing reads `logs/<next>` until it is absent. An absent slot alone
//! proves nothing: garbage collection may have removed it (this master was
//! overtaken while it stalled), a chunk may be missing in the middle of the
//! log (damage), or stray objects may sit inside an applied chunk's range or
//! beyond the end. Before a master claims the log, at open, and periodically
//! while it tails, the driver lists the folder and asks [`judge`] what the
//! listing means. This module performs no I/O, so every interleaving of a
//! stalled task with writers and garbage collection is a plain unit test.
//!
//! The observations must be made in this order, which the proofs below rely
//! on: (1) list `logs/` from the judged position, (2) read the slot at
//! `next_seq` again, (3) list `checkpoints/`.

/// What this master knows of the log below its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Names below this were judged before (or lie below the checkpoint this
    /// master restored from: dead history that garbage collection owns).
    pub judged_from: u64,
    /// First sequence numbers of the chunks applied at or after
    /// `judged_from`, ascending.
    pub applied: Vec<u64>,
    /// The first record this master has not applied: the slot it found absent.
    pub next_seq: u64,
}

/// What the folder showed, observed in the order the module doc gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Chunk names at or after `judged_from`, ascending.
    pub listed: Vec<u64>,
    /// Whether `logs/<next_seq>` existed when read after the listing.
    pub slot_present: bool,
    /// The newest checkpoint listed after that read.
    pub newest_checkpoint: Option<u64>,
}

/// What the listing means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The absent slot is the end of the log; everything below it that was
    /// listed is a chunk this master applied.
    End,
    /// The slot was written after it was read: keep tailing. Everything
    /// listed below `next_seq` checked out.
    Moved,
    /// Garbage collection removed chunks this master still needed; reload
    /// from `checkpoint`.
    Overtaken {
        /// The newest checkpoint, beyond this master's position.
        checkpoint: u64,
    },
    /// Records `from..=to` are missing: `found` exists beyond the absent
    /// slot (a hole in the log, or a stray object beyond its end).
    Hole {
        /// First missing record (the absent slot).
        from: u64,
        /// Last missing record.
        to: u64,
        /// The chunk name found beyond the absent slot.
        found: u64,
    },
    /// `found` is named like a chunk but lies inside the range of `chunk`,
    /// which this master applied.
    Inside {
        /// The stray name.
        found: u64,
        /// The applied chunk whose range holds it (`None`: below the first
        /// chunk applied since `judged_from`).
        chunk: Option<u64>,
    },
}

/// Judges one observation of the folder.
///
/// Soundness, assuming chunks are only ever removed by garbage collection,
/// which deletes in ascending order and only below a published checkpoint:
/// - A name below `next_seq` that this master did not apply cannot be an
///   honest chunk (it applied every chunk from `judged_from` on, in order).
///   A stalled primary's dead write lands only in a slot garbage collection
///   freed, which is a former chunk start, so this master applied that name
///   or it lies below `judged_from`.
/// - If the slot is absent after a chunk beyond it was listed, either the
///   slot never existed (a hole: the writer of the later chunk wrote the slot
///   first) or garbage collection removed it, which it does only after a
///   checkpoint beyond it was published; the newest checkpoint, listed last,
///   is then beyond `next_seq` (retention never removes the newest).
pub fn judge(position: &Position, observed: &Observed) -> Verdict {
    for &name in observed
        .listed
        .iter()
        .filter(|&&n| n >= position.judged_from && n < position.next_seq)
    {
        if position.applied.binary_search(&name).is_err() {
            let chunk = position.applied.iter().rev().find(|&&c| c < name).copied();
            return Verdict::Inside { found: name, chunk };
        }
    }
    if observed.slot_present {
        return Verdict::Moved;
    }
    if let Some(checkpoint) = observed.newest_checkpoint {
        if checkpoint > position.next_seq {
            return Verdict::Overtaken { checkpoint };
        }
    }
    if let Some(&found) = observed.listed.iter().find(|&&n| n >= position.next_seq) {
        return Verdict::Hole {
            from: position.next_seq,
            to: found.saturating_sub(1).max(position.next_seq),
            found,
        };
    }
    Verdict::End
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(judged_from: u64, applied: &[u64], next_seq: u64) -> Position {
        Position {
            judged_from,
            applied: applied.to_vec(),
            next_seq,
        }
    }

    fn seen(listed: &[u64], slot_present: bool, newest: Option<u64>) -> Observed {
        Observed {
            listed: listed.to_vec(),
            slot_present,
            newest_checkpoint: newest,
        }
    }

    #[test]
    fn a_clean_end_is_the_end() {
        let p = pos(0, &[1, 5, 9], 12);
        assert_eq!(judge(&p, &seen(&[1, 5, 9], false, None)), Verdict::End);
        assert_eq!(judge(&p, &seen(&[1, 5, 9], false, Some(5))), Verdict::End);
        assert_eq!(judge(&p, &seen(&[1, 5, 9], false, Some(12))), Verdict::End);
        // A fresh log.
        assert_eq!(
            judge(&pos(0, &[], 1), &seen(&[], false, None)),
            Verdict::End
        );
    }

    #[test]
    fn a_chunk_written_after_the_read_means_keep_tailing() {
        let p = pos(0, &[1, 5], 9);
        assert_eq!(judge(&p, &seen(&[1, 5, 9, 14], true, None)), Verdict::Moved);
    }

    /// Issue 7, case 1: a standby that has applied no chunk yet (fresh, or
    /// just reloaded) stalls while the primary writes, checkpoints and
    /// collects the chunks it needs. Its slot is absent for ever; the newest
    /// checkpoint tells it to reload.
    #[test]
    fn a_standby_with_no_chunk_applied_learns_it_was_overtaken() {
        let p = pos(0, &[], 1);
        assert_eq!(
            judge(&p, &seen(&[300, 340], false, Some(320))),
            Verdict::Overtaken { checkpoint: 320 }
        );
        // Reloaded from checkpoint 320 (no chunk below it applied), stalled again.
        let p = pos(320, &[], 320);
        assert_eq!(
            judge(&p, &seen(&[700], false, Some(650))),
            Verdict::Overtaken { checkpoint: 650 }
        );
    }

    /// Issue 7, case 4: a chunk missing in the middle of the log.
    #[test]
    fn a_hole_names_the_missing_range() {
        let p = pos(0, &[1, 5], 9);
        assert_eq!(
            judge(&p, &seen(&[1, 5, 14, 20], false, None)),
            Verdict::Hole {
                from: 9,
                to: 13,
                found: 14
            }
        );
        // A checkpoint at or below the position does not excuse a hole.
        assert_eq!(
            judge(&p, &seen(&[1, 5, 14], false, Some(9))),
            Verdict::Hole {
                from: 9,
                to: 13,
                found: 14
            }
        );
    }

    /// Issue 7, case 5: stray objects named like chunks.
    #[test]
    fn stray_names_inside_a_range_or_beyond_the_end_are_found() {
        let p = pos(0, &[1, 5, 9], 12);
        assert_eq!(
            judge(&p, &seen(&[1, 5, 7, 9], false, None)),
            Verdict::Inside {
                found: 7,
                chunk: Some(5)
            }
        );
        assert_eq!(
            judge(&p, &seen(&[1, 5, 9, 0xffff], false, None)),
            Verdict::Hole {
                from: 12,
                to: 0xfffe,
                found: 0xffff
            }
        );
        // An object inside an applied range is damage even while the log moves.
        assert_eq!(
            judge(&p, &seen(&[1, 5, 7, 9, 12], true, None)),
            Verdict::Inside {
                found: 7,
                chunk: Some(5)
            }
        );
    }

    /// Names below `judged_from` belong to garbage collection: a stalled
    /// primary may briefly re-create a freed slot there before it learns it
    /// was overtaken and removes its dead chunk.
    #[test]
    fn dead_history_below_the_judged_position_is_not_judged() {
        let p = pos(320, &[320, 330], 345);
        assert_eq!(judge(&p, &seen(&[320, 330], false, None)), Verdict::End);
        // The listing starts at judged_from, but even a wider one is fine.
        assert_eq!(
            judge(&p, &seen(&[100, 200, 320, 330], false, None)),
            Verdict::End
        );
    }
}
