//! `TailBuffer`: bounded, with a mark when anything was dropped.

use draftsmith_process::TailBuffer;

#[test]
fn keeps_the_tail() {
    let mut tail = TailBuffer::new(10);
    for i in 0..10_000 {
        tail.push(format!("{i}\n").as_bytes());
    }
    let text = tail.finish();
    assert!(text.ends_with("9998\n9999\n"), "{text}");
    assert!(text.starts_with("[… "), "{text}");
    let mut small = TailBuffer::new(10);
    small.push(b"hello");
    assert_eq!(small.finish(), "hello");
    let mut big = TailBuffer::new(4);
    big.push(b"abcdefgh");
    assert!(big.finish().ends_with("\nefgh"));
}

#[test]
fn does_not_start_inside_a_utf8_sequence() {
    let mut tail = TailBuffer::new(5);
    tail.push("ééééé".as_bytes());
    let text = tail.finish();
    assert!(!text.contains('\u{fffd}'), "{text}");
    assert!(text.ends_with("éé"), "{text}");
}
