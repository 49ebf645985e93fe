//! Answering a request: the rate limit and basic auth first, then the method, the path and
//! the answer for it (the scrape, the landing page, or a plain-text refusal), with the web
//! config's headers added to every answer.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::flight::{self, Outcome, Rendered, SharedText};
use super::selection::Selection;
use super::web_state::WebState;
use super::{Shared, auth, gzip};
use crate::metrics::VERSION;

/// The content type of the Prometheus text format.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

type Body = Full<Bytes>;

/// Answers one request, then adds the configured headers (to every answer, 401s included,
/// as the toolkit does).
pub(super) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    // We never read request bodies; a connection with one unread cannot carry another
    // request, so it is closed after the answer.
    let has_body = !req.body().is_end_stream();
    let web = shared.web();
    let mut response = route(req, &shared, &web, has_body).await;
    let headers = response.headers_mut();
    for (name, value) in &web.config.headers {
        headers.insert(name.clone(), value.clone());
    }
    if has_body {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

async fn route(
    req: Request<Incoming>,
    shared: &Arc<Shared>,
    web: &WebState,
    has_body: bool,
) -> Response<Body> {
    // Before anything that costs: a request over the limit is refused at once.
    if web.rate_limit.as_ref().is_some_and(|bucket| !bucket.allow()) {
        return plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n");
    }
    if let Some(auth) = &web.auth {
        let credentials = req.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        match auth.check(credentials).await {
            auth::Verdict::Allow => {}
            auth::Verdict::Deny => {
                let mut response = plain(StatusCode::UNAUTHORIZED, "Unauthorized\n");
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                return response;
            }
            auth::Verdict::Busy => {
                let mut response = plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many logins being checked; retry shortly\n",
                );
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut response =
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use GET or HEAD\n");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if has_body {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request bodies are not accepted\n");
    }
    let path = req.uri().path();
    if path == shared.config.telemetry_path {
        return metrics(&req, shared).await;
    }
    if path == "/" {
        return landing(&shared.config.telemetry_path);
    }
    plain(StatusCode::NOT_FOUND, "not found\n")
}

async fn metrics(req: &Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
    let _permit = match &shared.in_flight {
        Some(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many concurrent scrapes (--web.max-requests)\n",
                );
            }
        },
        None => None,
    };
    let selection = match Selection::of(req.uri().query(), &shared.exporter) {
        Ok(selection) => selection,
        Err(why) => return plain_owned(StatusCode::BAD_REQUEST, why),
    };
    let deadline = flight::scrape_deadline(req, &shared.config);
    let body = match flight::collect_shared(shared, deadline).await {
        Outcome::Ready(body) => body,
        // The table read is still running (a huge table, a hung /proc): answer in time, every
        // collector failed, rather than let Prometheus time out and record nothing at all.
        Outcome::DeadlinePassed => Rendered::new(shared.exporter.missed_deadline()),
        Outcome::Failed => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the collection failed; see the exporter's log\n",
            );
        }
    };
    let gzipped = gzip::accepts_gzip(req.headers().get(header::ACCEPT_ENCODING));
    let bytes = match (&selection, gzipped) {
        (Selection::All, true) => body.gzipped(),
        (Selection::All, false) => Bytes::from_owner(SharedText(body)),
        (chosen, _) => {
            let text = body.scraped.select(&|name| chosen.keeps(name));
            if gzipped { gzip::gzip(text.as_bytes()) } else { Bytes::from(text) }
        }
    };
    let mut response = Response::new(Full::new(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    // Caches between us and the client must not hand a gzipped answer to one that cannot
    // read it.
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzipped {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

fn plain_owned(status: StatusCode, text: String) -> Response<Body> {
    let mut response = plain(status, "");
    *response.body_mut() = Full::new(Bytes::from(text));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn landing(telemetry_path: &str) -> Response<Body> {
    let path = html_escape(telemetry_path);
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>libproc_exporter</title></head>\n\
         <body>\n<h1>libproc_exporter</h1>\n<p>Process counts from the kernel's process table, version {VERSION}.</p>\n\
         <p><a href=\"{path}\">Metrics</a></p>\n</body>\n</html>\n"
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
