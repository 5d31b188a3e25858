//! A deadline for request bodies. actix bounds the time to read a request's
//! head (`client_request_timeout`) but not its body: a client that sends a
//! `Content-Length` and then trickles, or stops, would hold a worker's
//! connection for as long as it likes. This middleware reads the body of
//! the routes it wraps, up to the size they accept, within `body_timeout`,
//! then hands it on; too slow gets 408 and the connection is closed.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::{self, BytesMut};
use actix_web::{HttpMessage as _, HttpResponse, http::header::ContentType};
use futures_util::StreamExt;

use crate::api::MAX_BODY_BYTES;
use crate::site::Site;

/// Middleware: reads at most one byte more than [`MAX_BODY_BYTES`] (so the
/// extractor after it still sees an oversized body as one, and answers 413)
/// within the site's `body_timeout`. Needs `web::Data<Site>` in the app
/// data.
///
/// # Errors
/// Only those of the wrapped service.
pub async fn read_body_in_time(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(timeout) = request
        .app_data::<web::Data<Site>>()
        .map(|site| site.body_timeout)
    else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let mut payload = request.take_payload();
    let read = async {
        let mut body = BytesMut::new();
        while body.len() <= MAX_BODY_BYTES {
            match payload.next().await {
                Some(Ok(chunk)) => body.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(body.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(body)) => {
            request.set_payload(Payload::from(body));
            Ok(next.call(request).await?.map_into_boxed_body())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            log::debug!(
                "{} {}: body not received within {timeout:?}",
                request.method(),
                request.path()
            );
            let response = HttpResponse::RequestTimeout()
                .content_type(ContentType::plaintext())
                .force_close()
                .body("408 Request Timeout: the request body did not arrive in time.\n");
            Ok(request.into_response(response))
        }
    }
}
