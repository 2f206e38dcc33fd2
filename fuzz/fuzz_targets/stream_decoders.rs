//! Bytes as an upstream stream, split in two at a point taken from the input, through each
//! surface's decoders (SSE → Responses events; AWS event stream → Anthropic events): never panics,
//! and the neutral events do not depend on where the bytes were split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_models_bridge::eventstream::Limits;
use sf_models_bridge::surface::bedrock::{AnthropicEvents, EventStreamFrames};
use sf_models_bridge::surface::responses::ResponsesEvents;
use sf_models_bridge::surface::sse::SseUnframe;
use sf_models_bridge::surface::stream::{Flow, ReadEvents, Unframe};

/// Every neutral event (as debug text) and how the stream ended.
fn decode(
    unframe: &mut dyn Unframe,
    reader: &mut dyn ReadEvents,
    pieces: &[&[u8]],
) -> (Vec<String>, String) {
    let mut events = Vec::new();
    let mut collect = |event: sf_models_bridge::core::StreamEvent<'_>| {
        events.push(format!("{event:?}"))
    };
    let mut finished = false;
    'pieces: for piece in pieces {
        if let Err(failure) = unframe.push(piece) {
            return (events, format!("push: {}", failure.status));
        }
        loop {
            match unframe.next_event() {
                Ok(Some(event)) => match reader.read(&event, &mut collect) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Finished) => {
                        finished = true;
                        break 'pieces;
                    }
                    Err(failure) => return (events, format!("read: {}", failure.status)),
                },
                Ok(None) => break,
                Err(failure) => return (events, format!("frame: {}", failure.status)),
            }
        }
    }
    if !finished {
        if let Err(failure) = unframe.finish() {
            return (events, format!("finish: {}", failure.status));
        }
    }
    let end = match reader.finish(&mut collect) {
        Ok(()) => "ok".to_owned(),
        Err(failure) => format!("end: {}", failure.status),
    };
    (events, end)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut).min(stream.len());
    let (head, tail) = stream.split_at(at);
    let sse = |pieces: &[&[u8]]| {
        decode(&mut SseUnframe::new(), &mut ResponsesEvents::new(), pieces)
    };
    assert_eq!(sse(&[stream]), sse(&[head, tail]));
    let frames = |pieces: &[&[u8]]| {
        decode(
            &mut EventStreamFrames::new(Limits::default()),
            &mut AnthropicEvents::default(),
            pieces,
        )
    };
    assert_eq!(frames(&[stream]), frames(&[head, tail]));
});
