//! Moving messages across a Pingora [`Session`]: the request head in, as an `http::Request`
//! around the body the service reads on demand; the service's response out, header first, then
//! the body's data as it comes.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::HttpTask;
use pingora::proxy::Session;
use pingora::{Error, ErrorType};

/// The `Content-Length` that frames the body; none for a chunked body, where it is ignored.
pub(super) fn declared_length(header: &RequestHeader) -> Option<u64> {
    if header.headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    header
        .headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether the client waits for `100 Continue` before it sends the body (HTTP/1.1 only).
pub(super) fn expects_continue(header: &RequestHeader) -> bool {
    header.version == Version::HTTP_11
        && header
            .headers
            .get(EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// The request the service sees: Pingora's request header around `body`.
pub(super) fn to_http_request<B>(header: &RequestHeader, body: B) -> http::Request<B> {
    let mut request = http::Request::new(body);
    *request.method_mut() = header.method.clone();
    *request.uri_mut() = header.uri.clone();
    *request.version_mut() = header.version;
    *request.headers_mut() = header.headers.clone();
    request
}

/// Writes the service's response: the header, then the body's data as the body produces it, so an
/// event stream leaves as it comes and a slow client slows the producer down (backpressure).
///
/// The header leaves in one call with the first data when that is ready with the response (as a
/// stream's first event is): the two writes then follow each other at once, as in Pingora's own
/// proxying, rather than a turn of the loop (and, on a busy machine, a scheduling turn) apart.
/// Data the body has ready beside a frame it was waited for goes in the same write (up to
/// [`WRITE_BATCH_BYTES`]), so a producer that got ahead of a slow client is caught up in fewer,
/// larger writes.
///
/// Each write may wait `write_timeout` for the client to read; a client that stops reading fails
/// the write then, and Pingora closes the connection, rather than holding it (and the answer)
/// forever. Time the body spends producing a frame is not counted.
pub(super) async fn write_response<B>(
    session: &mut Session,
    response: http::Response<B>,
    write_timeout: Duration,
) -> pingora::Result<()>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = response.into_parts();
    let mut body = pin!(body);
    let bodiless = session.req_header().method == Method::HEAD
        || matches!(
            parts.status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
        || parts.status.is_informational();
    let http1 = !session.is_http2();
    if http1 {
        // Pingora's HTTP/1 writer can only serialise 1.x status lines.
        parts.version = Version::HTTP_11;
    }
    if !bodiless {
        let can_chunk = http1 && session.req_header().version == Version::HTTP_11;
        frame(&mut parts.headers, body.size_hint(), can_chunk);
    }
    let header = Box::new(ResponseHeader::from(parts));
    if bodiless || body.is_end_stream() {
        within(write_timeout, session.write_response_header(header, true)).await?;
        return within(write_timeout, session.write_response_body(None, true)).await;
    }
    let mut header = Some(header);
    loop {
        let mut batch = Batch::default();
        if header.is_some() {
            // A stream's first event is usually ready with the response.
            batch.gather(body.as_mut()).await;
        }
        if batch.is_empty() {
            if let Some(header) = header.take() {
                // Nothing to send with it yet (an answer still on its way): the client gets
                // the header now.
                within(write_timeout, session.write_response_header(header, false)).await?;
            }
            // While the body waits on its upstream (a quiet stream), a client that leaves is
            // noticed at once and the body dropped with its upstream call, not at the next write.
            let next = pin!(async { body.frame().await });
            let frame = super::filter::unless_the_client_leaves(session, next).await?;
            batch.add(frame, body.is_end_stream());
            batch.gather(body.as_mut()).await;
        }
        let Batch {
            data,
            ended,
            failed,
        } = batch;
        // Trailers have nowhere to go on HTTP/1 (Pingora drops them too): only data is written.
        let data = (!data.is_empty()).then(|| data.freeze());
        let ended = ended && failed.is_none();
        match header.take() {
            Some(header) => {
                let tasks = vec![HttpTask::Header(header, false), HttpTask::Body(data, ended)];
                within(write_timeout, session.write_response_tasks(tasks)).await?;
            }
            None if data.is_some() || ended => {
                within(write_timeout, session.write_response_body(data, ended)).await?;
            }
            None => {}
        }
        if let Some(error) = failed {
            return Err(Error::because(
                ErrorType::InternalError,
                "bridge response body",
                error,
            ));
        }
        if ended {
            return Ok(());
        }
    }
}

/// How many bytes of ready body data one write carries at most (give or take a frame).
const WRITE_BATCH_BYTES: usize = 16 * 1024;

/// The body data one write carries: what the body had ready, and how it stopped.
#[derive(Default)]
struct Batch {
    data: BytesMut,
    /// The body has no more frames.
    ended: bool,
    /// The body failed after `data`, which is still written.
    failed: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.data.is_empty() && !self.ended && self.failed.is_none()
    }

    fn is_closed(&self) -> bool {
        self.ended || self.failed.is_some() || self.data.len() >= WRITE_BATCH_BYTES
    }

    /// Takes one frame (`None`: the body is over), `end_stream` being the body's state after it.
    fn add<E>(&mut self, frame: Option<Result<Frame<Bytes>, E>>, end_stream: bool)
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match frame {
            None => self.ended = true,
            Some(Err(error)) => self.failed = Some(error.into()),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    self.data.extend_from_slice(&data);
                }
                self.ended = end_stream;
            }
        }
    }

    /// Adds the frames `body` has ready now, without waiting for more.
    async fn gather<B>(&mut self, mut body: Pin<&mut B>)
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        while !self.is_closed() {
            let Poll::Ready(frame) = poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await
            else {
                return;
            };
            self.add(frame, body.is_end_stream());
        }
    }
}

/// `write`, failed once it has waited `limit`. The error is a downstream `WriteError`, which
/// Pingora treats as a dead connection: it closes it without trying to write an error answer
/// (which would only block again).
async fn within<T>(
    limit: Duration,
    write: impl Future<Output = pingora::Result<T>>,
) -> pingora::Result<T> {
    match tokio::time::timeout(limit, write).await {
        Ok(written) => written,
        Err(_) => Error::e_explain(
            ErrorType::WriteError,
            "the client did not read the answer within server.write_timeout_secs",
        )
        .map_err(|e| e.into_down()),
    }
}

/// Makes sure an HTTP/1 response is not close-delimited, which would end keep-alive: a body of
/// known size gets its `Content-Length`, any other body `Transfer-Encoding: chunked` where the
/// client understands it. An HTTP/1.0 client gets a close-delimited body, its only option.
fn frame(headers: &mut HeaderMap, size: SizeHint, can_chunk: bool) {
    if headers.contains_key(CONTENT_LENGTH) || headers.contains_key(TRANSFER_ENCODING) {
        return;
    }
    if let Some(length) = size.exact() {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    } else if can_chunk {
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: &[(&str, &str)]) -> RequestHeader {
        let mut header = RequestHeader::build("POST", b"/v1/completions", None).unwrap();
        for (name, value) in lines {
            header.append_header(name.to_string(), *value).unwrap();
        }
        header
    }

    type Frames = Vec<Result<Frame<Bytes>, std::io::Error>>;

    /// A body that has `frames` ready, then waits for ever (`more`) or ends.
    fn body(frames: Frames, more: bool) -> impl Body<Data = Bytes, Error = std::io::Error> {
        use futures_util::StreamExt;
        let ready = futures_util::stream::iter(frames);
        let rest = futures_util::stream::pending().take(usize::from(more));
        http_body_util::StreamBody::new(ready.chain(rest))
    }

    fn data(text: &'static str) -> Result<Frame<Bytes>, std::io::Error> {
        Ok(Frame::data(Bytes::from_static(text.as_bytes())))
    }

    #[tokio::test]
    async fn a_batch_takes_what_is_ready_and_no_more() {
        let mut waiting = pin!(body(vec![data("a"), data("b")], true));
        let mut batch = Batch::default();
        batch.gather(waiting.as_mut()).await;
        assert_eq!(&batch.data[..], b"ab");
        assert!(!batch.ended && batch.failed.is_none());

        let mut nothing = pin!(body(vec![], true));
        let mut batch = Batch::default();
        batch.gather(nothing.as_mut()).await;
        assert!(batch.is_empty());

        let mut ending = pin!(body(vec![data("a"), data("b")], false));
        let mut batch = Batch::default();
        batch.gather(ending.as_mut()).await;
        assert_eq!(&batch.data[..], b"ab");
        assert!(batch.ended);
    }

    #[tokio::test]
    async fn a_batch_is_bounded_and_keeps_data_before_a_failure() {
        let big = || {
            Ok(Frame::data(Bytes::from(vec![
                b'x';
                WRITE_BATCH_BYTES / 2 + 1
            ])))
        };
        let mut large = pin!(body(vec![big(), big(), big()], true));
        let mut batch = Batch::default();
        batch.gather(large.as_mut()).await;
        assert_eq!(batch.data.len(), 2 * (WRITE_BATCH_BYTES / 2 + 1));

        let broken = Err(std::io::Error::other("broken"));
        let mut failing = pin!(body(vec![data("a"), broken, data("b")], true));
        let mut batch = Batch::default();
        batch.gather(failing.as_mut()).await;
        assert_eq!(&batch.data[..], b"a");
        assert!(batch.failed.is_some() && !batch.ended);
    }

    #[test]
    fn declared_length_ignores_chunked_bodies() {
        assert_eq!(
            declared_length(&request(&[("content-length", "12")])),
            Some(12)
        );
        assert_eq!(declared_length(&request(&[])), None);
        let chunked = request(&[("content-length", "12"), ("transfer-encoding", "chunked")]);
        assert_eq!(declared_length(&chunked), None);
    }

    #[test]
    fn expect_continue_is_case_insensitive() {
        assert!(expects_continue(&request(&[("expect", "100-Continue")])));
        assert!(!expects_continue(&request(&[("expect", "something-else")])));
        assert!(!expects_continue(&request(&[])));
    }

    #[test]
    fn unknown_length_is_chunked_known_length_is_counted() {
        let mut headers = HeaderMap::new();
        frame(&mut headers, SizeHint::new(), true);
        assert_eq!(headers[TRANSFER_ENCODING], "chunked");

        let mut headers = HeaderMap::new();
        frame(&mut headers, SizeHint::with_exact(7), true);
        assert_eq!(headers[CONTENT_LENGTH], "7");
        assert!(!headers.contains_key(TRANSFER_ENCODING));

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(3));
        frame(&mut headers, SizeHint::new(), true);
        assert!(!headers.contains_key(TRANSFER_ENCODING));

        let mut headers = HeaderMap::new();
        frame(&mut headers, SizeHint::new(), false);
        assert!(headers.is_empty());
    }

    #[test]
    fn request_keeps_method_uri_version_and_headers() {
        let header = request(&[("authorization", "Bearer k"), ("x-a", "1"), ("x-a", "2")]);
        let request = to_http_request(&header, ());
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "/v1/completions");
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers().get_all("x-a").iter().count(), 2);
        assert_eq!(request.headers()["authorization"], "Bearer k");
    }
}
