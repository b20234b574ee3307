//! Deleting a history-sync blob from the CDN once the companion device has it
//! (PROTOCOL §6; WhatsApp Web's `WAWebMmsClientMmsDeleteMdHistorySyncBlob`, whatsmeow
//! `upload.go`):
//! `DELETE https://{host}/mms/md-msg-hist/{T}?token={T}&d_md={base64url(direct_path before "?"), unpadded}&auth={auth}[&e_handle=…]`,
//! with a `Companion_User_Secret` header only when both a handle and a secret are given.
//! Any 2xx is success. Hosts, retries, backoff and the forced renewal after a 401/403
//! are the upload's (PROTOCOL §3–4); the outcome's errors are [`DeleteError`]s.

use std::time::Instant;

use http::HeaderValue;

use crate::b64;
use crate::conn::{form_encode, host_base, MediaConn};
use crate::error::{DeleteError, HostFailureReason, Misuse};
use crate::media_type::MediaType;
use crate::transfer::{
    base_headers, push_capped, BodySpec, Exchange, HostCursor, Input, Output, Request, RequestId,
    RetryPolicy, ERROR_BODY_CAP,
};

/// Which blob to delete. `Debug` redacts the companion secret.
#[derive(Clone)]
pub struct DeleteSpec {
    /// The blob's `direct_path`, as its message gave it.
    pub direct_path: String,
    /// The blob's `file_enc_sha256` (its token).
    pub file_enc_sha256: [u8; 32],
    /// The `e_handle`, when the history sync notification carried one.
    pub handle: Option<String>,
    /// The companion's user secret, sent only together with a handle.
    pub companion_secret: Option<String>,
}

impl std::fmt::Debug for DeleteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteSpec")
            .field("direct_path", &self.direct_path)
            .field("handle", &self.handle)
            .field(
                "companion_secret",
                &self.companion_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A completed delete.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeleteResult {
    /// The host that deleted it.
    pub host: String,
    /// Its 2xx status.
    pub status: u16,
}

#[derive(Debug)]
enum State {
    Ready,
    NeedConn { force: bool },
    InFlight(Exchange, Vec<u8>),
    Backoff { until: Instant },
    Done,
}

/// One delete. Drive it like an [`Upload`](crate::Upload).
#[derive(Debug)]
pub struct Delete {
    spec: DeleteSpec,
    retry: RetryPolicy,
    started: Instant,
    conn: Option<MediaConn>,
    state: State,
    cursor: HostCursor,
    previous: Option<String>,
    next_id: u64,
    auth_renewed: bool,
    outcome: Option<Result<DeleteResult, DeleteError>>,
}

impl Delete {
    /// A delete of `spec`, started at `now`, retried as `retry` says (an upload's
    /// default: 4 attempts, 1 s, 2 s, 4 s apart).
    pub fn new(spec: DeleteSpec, retry: RetryPolicy, now: Instant) -> Self {
        Delete {
            spec,
            retry,
            started: now,
            conn: None,
            state: State::Ready,
            cursor: HostCursor::default(),
            previous: None,
            next_id: 0,
            auth_renewed: false,
            outcome: None,
        }
    }

    /// The outcome, once reached.
    pub fn outcome(&self) -> Option<&Result<DeleteResult, DeleteError>> {
        self.outcome.as_ref()
    }

    /// The URL on `host` (PROTOCOL §6).
    fn url(&self, host: &str, auth: &str) -> String {
        let token = b64::url(&self.spec.file_enc_sha256);
        let path = self.spec.direct_path.split('?').next().unwrap_or("");
        let mut url = format!(
            "{}/mms/md-msg-hist/{token}?token={}&d_md={}&auth={}",
            host_base(host),
            form_encode(&token),
            form_encode(&b64::url_nopad(path.as_bytes())),
            form_encode(auth),
        );
        if let Some(h) = &self.spec.handle {
            url.push_str(&format!("&e_handle={}", form_encode(h)));
        }
        url
    }

    /// The next thing the driver must do.
    pub fn poll_output(
        &mut self,
        now: Instant,
    ) -> Output<'static, Result<DeleteResult, DeleteError>> {
        if let Some(o) = &self.outcome {
            return Output::Done(o.clone());
        }
        match &self.state {
            State::NeedConn { force } => return Output::NeedMediaConn { force: *force },
            State::InFlight(ex, _) => return Output::Wait(ex.deadline),
            State::Backoff { until } if now < *until => return Output::Wait(*until),
            State::Backoff { .. } | State::Ready | State::Done => {}
        }
        self.state = State::Ready;
        let transfer_deadline = self.started.checked_add(self.retry.total_timeout);
        if transfer_deadline.is_some_and(|d| now >= d) {
            return self.give_up("deadline passed");
        }
        let Some(conn) = self.conn.as_ref().filter(|c| !c.is_expired(now)) else {
            self.state = State::NeedConn { force: false };
            return Output::NeedMediaConn { force: false };
        };
        let prev = self.previous.as_deref().map(|h| (h, false));
        let Some(host) = conn.upload_host(&MediaType::History, self.cursor.attempts, prev) else {
            return self.finish(Err(DeleteError::NoHosts {
                media_type: MediaType::History.to_string(),
            }));
        };
        let url = self.url(&host, &conn.auth);
        let mut headers = base_headers(false, 0);
        if let (Some(_), Some(secret)) = (&self.spec.handle, &self.spec.companion_secret) {
            if let Ok(v) = HeaderValue::from_str(secret) {
                headers.insert("companion_user_secret", v);
            }
        }
        let id = RequestId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        let deadline = self.retry.deadline(now, 0, transfer_deadline);
        self.state = State::InFlight(Exchange::new(id, host.clone(), deadline), Vec::new());
        Output::Transmit(Request {
            id,
            host,
            method: http::Method::DELETE,
            url,
            headers,
            body: BodySpec::Empty,
            deadline,
        })
    }

    /// Feeds one input at time `now` (the upload's contract).
    ///
    /// # Errors
    /// [`Misuse`] when the driver breaks the contract.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), Misuse> {
        if self.outcome.is_some() {
            return Err(Misuse::Finished);
        }
        if let Some(id) = input_id(&input) {
            if id.0 >= self.next_id {
                return Err(Misuse::UnknownRequest(id.0));
            }
            if !matches!(&self.state, State::InFlight(ex, _) if ex.id == id) {
                return Ok(()); // superseded
            }
        }
        match input {
            Input::MediaConn(c) => {
                if c.is_expired(now) {
                    if matches!(self.state, State::NeedConn { force: true }) {
                        self.finish(Err(DeleteError::ConnExpired));
                    } else {
                        self.state = State::NeedConn { force: true };
                    }
                } else {
                    self.cursor.secrets.add_auth(&c.auth);
                    if matches!(self.state, State::NeedConn { .. }) {
                        self.state = State::Ready;
                    }
                    self.conn = Some(c);
                }
            }
            Input::Timeout => match &self.state {
                State::InFlight(ex, _) if now >= ex.deadline => {
                    let host = ex.host.clone();
                    self.failed(now, &host, HostFailureReason::Timeout);
                }
                State::Backoff { until } if now >= *until => self.state = State::Ready,
                _ => {}
            },
            Input::Head {
                status, headers, ..
            } => {
                if let State::InFlight(ex, _) = &mut self.state {
                    ex.head(status, headers)?;
                }
            }
            Input::Body { data, .. } => {
                if let State::InFlight(ex, body) = &mut self.state {
                    ex.status_before("a body chunk before the response head")?;
                    push_capped(body, data, ERROR_BODY_CAP);
                }
            }
            Input::End { .. } => {
                if let State::InFlight(ex, _) = &self.state {
                    ex.status_before("the end of a response before its head")?;
                }
                if let State::InFlight(ex, body) = std::mem::replace(&mut self.state, State::Ready)
                {
                    self.on_answer(now, ex, &body);
                }
            }
            Input::Failed { reason, .. } => {
                if let State::InFlight(ex, _) = &self.state {
                    let host = ex.host.clone();
                    self.failed(now, &host, HostFailureReason::Transport(reason));
                }
            }
            Input::Sent { .. } => {}
        }
        Ok(())
    }

    fn on_answer(&mut self, now: Instant, ex: Exchange, body: &[u8]) {
        let status = ex.status.unwrap_or(0);
        match status {
            200..=299 => {
                self.finish(Ok(DeleteResult {
                    host: ex.host,
                    status,
                }));
            }
            401 | 403 if !self.auth_renewed => {
                self.auth_renewed = true;
                self.conn = None;
                self.state = State::NeedConn { force: true };
            }
            401 | 403 => {
                self.finish(Err(DeleteError::AuthRejected {
                    host: ex.host,
                    status,
                }));
            }
            500..=599 if status != 507 => {
                let body = self.cursor.secrets.body_text(body);
                self.failed(now, &ex.host, HostFailureReason::Status { status, body });
            }
            _ => {
                let body = self.cursor.secrets.body_text(body);
                self.finish(Err(DeleteError::Status {
                    host: ex.host,
                    status,
                    body,
                }));
            }
        }
    }

    fn failed(&mut self, now: Instant, host: &str, reason: HostFailureReason) {
        self.cursor.record(host, reason);
        self.previous = Some(host.to_owned());
        self.cursor.attempts = self.cursor.attempts.saturating_add(1);
        if self.cursor.attempts >= self.retry.max_attempts {
            self.give_up("attempt limit reached");
            return;
        }
        let until = now
            .checked_add(self.retry.backoff(self.cursor.attempts))
            .unwrap_or(now);
        self.state = State::Backoff { until };
    }

    fn give_up(&mut self, why: &'static str) -> Output<'static, Result<DeleteResult, DeleteError>> {
        let failures = std::mem::take(&mut self.cursor.failures);
        self.finish(Err(DeleteError::AllHostsFailed { why, failures }))
    }

    fn finish(
        &mut self,
        outcome: Result<DeleteResult, DeleteError>,
    ) -> Output<'static, Result<DeleteResult, DeleteError>> {
        self.state = State::Done;
        self.outcome = Some(outcome.clone());
        Output::Done(outcome)
    }
}

fn input_id(input: &Input<'_>) -> Option<RequestId> {
    match input {
        Input::Head { id, .. }
        | Input::Body { id, .. }
        | Input::End { id }
        | Input::Failed { id, .. }
        | Input::Sent { id, .. } => Some(*id),
        Input::MediaConn(_) | Input::Timeout => None,
    }
}

impl crate::transfer::Machine for Delete {
    type Outcome = Result<DeleteResult, DeleteError>;
    fn poll_output(&mut self, now: Instant) -> Output<'_, Self::Outcome> {
        Delete::poll_output(self, now)
    }
    fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), Misuse> {
        Delete::handle_input(self, now, input)
    }
    fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }
}
