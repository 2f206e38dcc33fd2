//! Bytes in two reads → `eventstream::Decoder`: never panics, reads the same frames and stops at
//! the same error wherever the input is split, and every frame it hands back re-encodes to the
//! exact bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_models_bridge::eventstream::{
    chunk_bytes, chunk_payload, encode_frame, DecodeError, Decoder, Frame, Limits,
};

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where the input is split (its low 7 bits, scaled to the input's
    // length) and whether CRCs are repaired first (its high bit): random bytes almost never
    // carry two right CRCs, and the header reader behind them is the code worth reaching.
    let [control, rest @ ..] = data else {
        return;
    };
    let mut input = rest.to_vec();
    if control & 0x80 != 0 {
        repair_crcs(&mut input);
    }
    let split = usize::from(control & 0x7f) * input.len() / 0x7f;
    let (head, tail) = input.split_at(split);

    let (frames, end) = decode(&[head, tail]);
    let (whole_frames, whole_end) = decode(&[&input]);
    assert_eq!(frames, whole_frames, "split at {split}");
    assert_eq!(end, whole_end, "split at {split}");

    let again: Vec<u8> = frames
        .iter()
        .flat_map(|frame| encode_frame(&frame.headers, &frame.payload))
        .collect();
    assert!(input.starts_with(&again), "frames re-encode to other bytes");
    match end {
        Ok(()) => assert_eq!(again.len(), input.len()),
        Err(DecodeError::Truncated { buffered, .. }) => {
            assert_eq!(again.len() + buffered, input.len())
        }
        Err(_) => {}
    }

    for frame in &frames {
        if let Ok(event) = chunk_bytes(&frame.payload) {
            let payload = chunk_payload(&event);
            assert_eq!(chunk_bytes(&payload).ok(), Some(event));
        }
    }
});

/// Every frame of `reads`, pushed in turn, then the error or the end-of-input check.
fn decode(reads: &[&[u8]]) -> (Vec<Frame>, Result<(), DecodeError>) {
    let mut decoder = Decoder::new(Limits::default());
    let mut frames = Vec::new();
    for read in reads {
        decoder.push(read);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Err(error)),
            }
        }
    }
    (frames, decoder.finish())
}

/// Rewrites both CRCs of each frame its preludes delimit, for as long as they fit the input.
fn repair_crcs(bytes: &mut [u8]) {
    let mut at = 0;
    while let Some(lengths) = bytes.get(at..at + 8) {
        let total = u32::from_be_bytes(lengths[..4].try_into().expect("4 bytes")) as usize;
        let prelude_crc = crc32fast::hash(lengths).to_be_bytes();
        let Some(slot) = bytes.get_mut(at + 8..at + 12) else {
            return;
        };
        slot.copy_from_slice(&prelude_crc);
        let end = at.saturating_add(total);
        if total < 16 || end > bytes.len() {
            return;
        }
        let message_crc = crc32fast::hash(&bytes[at..end - 4]).to_be_bytes();
        bytes[end - 4..end].copy_from_slice(&message_crc);
        at = end;
    }
}
