//! The audit journal format (formats/audit-journal-v1.md): a chain that
//! round-trips byte for byte, and every kind of tampering found at the
//! first broken link, with its line and entry named.

use camino::Utf8Path;
use ferry::audit::{Action, Head, Journal, Record};
use ferry::digest::Digest;
use ferry::manifest::RepositoryId;
use ferry::signing::SecretKey;

fn origin() -> &'static Utf8Path {
    Utf8Path::new("target/.ferry/audit")
}

fn record(n: u64, reason: Option<&str>) -> Record {
    Record {
        time: ferry::clock::parse("2026-12-04T14:00:00Z")
            .unwrap()
            .checked_add(jiff::SignedDuration::from_secs(n as i64 * 60))
            .unwrap(),
        action: if n.is_multiple_of(2) { Action::Import } else { Action::Refusal },
        repository: Some(RepositoryId::new("av").unwrap()),
        sequence: Some(n),
        snapshot: Some(Digest::of(&n.to_le_bytes())),
        signers: vec![SecretKey::generate().unwrap().id()],
        operator: Some("alice@site".into()),
        reason: reason.map(str::to_owned),
        // formats/audit-journal-v1.md §6a: entry 4 removed files as declined.
        declined: (n == 4).then_some(3),
    }
}

/// A journal of five entries and its bytes.
fn five() -> (Journal, String) {
    let mut journal = Journal::default();
    let reasons = [None, Some("below threshold: 1 more needed"), Some("-"), Some("ünïcode 100%"), None];
    for (n, reason) in reasons.into_iter().enumerate() {
        journal.append(record(n as u64 + 1, reason)).unwrap();
    }
    let text = journal.encode();
    (journal, text)
}

fn lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_owned).collect()
}

fn error_of(text: &str) -> String {
    Journal::decode(Some(text.as_bytes()), origin()).unwrap_err().to_string()
}

#[test]
fn a_journal_round_trips_byte_for_byte_and_keeps_its_head() {
    let (journal, text) = five();
    let read = Journal::decode(Some(text.as_bytes()), origin()).unwrap();
    assert_eq!(read, journal);
    assert_eq!(read.encode(), text);
    assert_eq!(read.head().entries, 5);
    assert_eq!(read.entries()[1].record.reason.as_deref(), Some("below threshold: 1 more needed"));
    assert_eq!(read.entries()[2].record.reason.as_deref(), Some("-"));
    assert!(text.contains(" below%20threshold:%201%20more%20needed\n"), "{text}");
    assert!(text.contains(" %2D\n"), "{text}");
    assert!(text.contains("%25 declined=3\n"), "{text}");
    assert_eq!(read.entries()[3].record.declined, Some(3));
    assert!(Journal::decode(None, origin()).unwrap().entries().is_empty());
    read.check_anchor(journal.head(), origin()).unwrap();
}

#[test]
fn an_edited_entry_is_found_at_the_next_link() {
    let (_, text) = five();
    let mut all = lines(&text);
    // Line 3 holds entry 2; the break shows at entry 3, which names it.
    all[2] = all[2].replace("alice@site", "mallory@x");
    let error = error_of(&all.concat());
    assert!(error.contains("line 4: entry 3 does not chain to entry 2"), "{error}");
}

#[test]
fn a_deleted_entry_is_found() {
    let (_, text) = five();
    let mut all = lines(&text);
    all.remove(3);
    let error = error_of(&all.concat());
    assert!(error.contains("line 4: entry 4 where 3 was expected"), "{error}");
}

#[test]
fn reordered_entries_are_found() {
    let (_, text) = five();
    let mut all = lines(&text);
    all.swap(2, 3);
    let error = error_of(&all.concat());
    assert!(error.contains("line 3: entry 3 where 2 was expected"), "{error}");
}

#[test]
fn renumbered_entries_after_a_deletion_still_break_the_chain() {
    let (_, text) = five();
    let mut all = lines(&text);
    all.remove(2);
    for (index, line) in all.iter_mut().enumerate().skip(1) {
        let rest = line.split_once(' ').unwrap().1.to_owned();
        *line = format!("{index} {rest}");
    }
    let error = error_of(&all.concat());
    assert!(error.contains("line 3: entry 2 does not chain to entry 1"), "{error}");
}

#[test]
fn a_truncated_entry_is_found() {
    let (_, text) = five();
    let cut = &text[..text.len() - 10];
    let error = error_of(cut);
    assert!(error.contains("line 6: truncated entry"), "{error}");
}

#[test]
fn entries_cut_from_the_end_or_a_changed_newest_entry_are_found_by_the_anchor() {
    let (journal, text) = five();
    let anchor: Head = journal.head();
    let mut all = lines(&text);
    all.pop();
    let shorter = Journal::decode(Some(all.concat().as_bytes()), origin()).unwrap();
    let error = shorter.check_anchor(anchor, origin()).unwrap_err().to_string();
    assert!(error.contains("ends at entry 4 but 5 were recorded"), "{error}");
    let changed = text.rsplit_once("alice@site").map(|(a, b)| format!("{a}bob{b}")).unwrap();
    let changed = Journal::decode(Some(changed.as_bytes()), origin()).unwrap();
    let error = changed.check_anchor(anchor, origin()).unwrap_err().to_string();
    assert!(error.contains("entry 5 is not the one recorded"), "{error}");
}

#[test]
fn non_canonical_spellings_are_refused() {
    let (_, text) = five();
    for (from, to, expected) in [
        (" below%20threshold", " below%2othreshold", "uppercase hex"),
        (" below%20threshold", " below%20%74hreshold", "canonical"),
        ("%2D\n", "-x\n", "must be written as %2D"),
        ("ferry audit-journal v1", "ferry audit-journal v2", "unsupported version"),
        (" declined=3\n", " declined=0\n", "not `declined=N` with N 1 or more"),
        (" declined=3\n", " declined=03\n", "not `declined=N`"),
        (" declined=3\n", " removed=3\n", "not `declined=N`"),
        (" declined=3\n", " declined=3 x\n", "found 12"),
    ] {
        let error = error_of(&text.replacen(from, to, 1));
        assert!(error.contains(expected), "{from} -> {to}: {error}");
    }
}

#[test]
fn appending_after_reading_extends_the_same_chain() {
    let (_, text) = five();
    let mut journal = Journal::decode(Some(text.as_bytes()), origin()).unwrap();
    let line = journal.append(record(6, Some("rollback requested"))).unwrap();
    let extended = format!("{text}{line}");
    let read = Journal::decode(Some(extended.as_bytes()), origin()).unwrap();
    assert_eq!(read.head(), journal.head());
    assert_eq!(read.entries().len(), 6);
}
