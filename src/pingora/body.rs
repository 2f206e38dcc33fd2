//! Moving messages across a Pingora [`Session`]: the request head in, as an `http::Request`
//! around the body the service reads on demand; the service's response out, header first, then
//! frame by frame.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use http_body::{Body, SizeHint};
use http_body_util::BodyExt;
use pingora::http::{RequestHeader, ResponseHeader};
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

/// Writes the service's response: the header, then each body frame as the body produces it, so an
/// event stream leaves chunk by chunk and a slow client slows the producer down (backpressure).
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
    let end = bodiless || body.is_end_stream();
    within(write_timeout, session.write_response_header(header, end)).await?;
    if end {
        return within(write_timeout, session.write_response_body(None, true)).await;
    }
    loop {
        // While the body waits on its upstream (a quiet stream), a client that leaves is noticed
        // at once and the body dropped with its upstream call, not at the next write.
        let next = pin!(async {
            body.frame().await.map(|frame| {
                frame.map_err(|e| {
                    Error::because(ErrorType::InternalError, "bridge response body", e)
                })
            })
        });
        let Some(frame) = super::filter::unless_the_client_leaves(session, next).await? else {
            return within(write_timeout, session.write_response_body(None, true)).await;
        };
        let frame = frame?;
        let end = body.is_end_stream();
        // Trailers have nowhere to go on HTTP/1 (Pingora drops them too): only data is written.
        let data = frame.into_data().unwrap_or_default();
        within(write_timeout, session.write_response_body(Some(data), end)).await?;
        if end {
            return Ok(());
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
