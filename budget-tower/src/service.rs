//! [`BudgetService`]: resolve → reserve → call → meter → settle.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use http::{header, HeaderMap, HeaderValue, Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::Service;

use budget_core::api::{check_canonical, ApiRoute, UnmeteredPolicy};
use budget_core::store::{
    DenialReason, Error as StoreError, Reservation, ReserveOutcome, ReserveRequest, UsageRecord,
    MAX_LABEL_CHARS,
};
use budget_core::usage::{Endpoint, PromptEstimate, RequestInfo, Usage, UsageMeter};
use budget_core::{EnforcementMode, Limiter, Money, UnpricedPolicy};

use crate::body::{settle, Settlement};
use crate::layer::Config;
use crate::{MeteredBody, Refusal, ResponseFuture};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The middleware [`BudgetLayer`](crate::BudgetLayer) produces.
///
/// The request body type must be buildable from [`Bytes`] (`axum::body::Body`,
/// `http_body_util::Full<Bytes>`, …): the layer reads the (bounded) request body to learn
/// the model and output limits, and may rewrite it to ask for streamed usage.
#[derive(Clone)]
pub struct BudgetService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for BudgetService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> BudgetService<S> {
    pub(crate) fn new(inner: S, config: Arc<Config>) -> Self {
        BudgetService { inner, config }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BudgetService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<MeteredBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The clone is the one that was driven to readiness: take it, leave a fresh clone.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(Box::pin(handle(self.config.clone(), inner, req)))
    }
}

fn refuse<B>(
    config: &Config,
    limiter: Option<&Limiter>,
    refusal: Refusal,
) -> Response<MeteredBody<B>> {
    config.hooks.refused(limiter, &refusal);
    refusal.into_response(MeteredBody::full)
}

async fn handle<S, ReqBody, ResBody>(
    config: Arc<Config>,
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<MeteredBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + From<Bytes>,
    ReqBody::Error: Into<BoxError>,
    ResBody: Body<Data = Bytes>,
{
    // The store's clock: a shared database's, so replicas agree on window boundaries.
    let now = config.store.now();
    let (mut parts, body) = req.into_parts();

    // 1. Which limiter?
    let Some(key) = (config.resolver)(&parts) else {
        return Ok(refuse(&config, None, Refusal::unknown_limiter()));
    };
    let found = crate::resolve::find(&*config.store, &key).await;
    let limiter = match found {
        Ok(Some(l)) => l,
        Ok(None) => return Ok(refuse(&config, None, Refusal::unknown_limiter())),
        Err(e) => {
            store_failed(&config, &e);
            if config.fail_open {
                return passthrough(inner, Request::from_parts(parts, body)).await;
            }
            return Ok(refuse(&config, None, Refusal::store_unavailable()));
        }
    };
    if !limiter.is_active {
        return Ok(refuse(&config, Some(&limiter), Refusal::inactive()));
    }
    if limiter.is_expired(now) {
        return Ok(refuse(
            &config,
            Some(&limiter),
            Refusal::expired(limiter.expires_at),
        ));
    }
    // The inner service (e.g. a proxy) learns the upstream from here (`Arc<Limiter>`).
    parts.extensions.insert(limiter.clone());

    // 2. What is asked? Decided once, from a path that every server reads the same way, so the
    //    path that is forwarded is the path that was metered.
    let path = parts.uri.path();
    if let Err(e) = check_canonical(path) {
        return Ok(refuse(&config, Some(&limiter), Refusal::invalid_path(e)));
    }
    let route = config
        .api_root
        .route(limiter.provider, parts.method.as_str(), path);
    let endpoint = match route {
        ApiRoute::Metered(endpoint) => endpoint,
        ApiRoute::OutsideApi => {
            return Ok(refuse(
                &config,
                Some(&limiter),
                Refusal::outside_api(limiter.provider),
            ));
        }
        route => {
            let may_spend = ApiRoute::method_may_spend(parts.method.as_str());
            let policy = limiter.unmetered_endpoints.unwrap_or(config.unmetered);
            match route {
                ApiRoute::Unmetered(what) if policy == UnmeteredPolicy::Refuse => {
                    return Ok(refuse(
                        &config,
                        Some(&limiter),
                        Refusal::unmetered_endpoint(what),
                    ));
                }
                ApiRoute::Unknown if may_spend && policy == UnmeteredPolicy::Refuse => {
                    return Ok(refuse(&config, Some(&limiter), Refusal::unknown_endpoint()));
                }
                _ => {}
            }
            // Nothing to meter (models, files, batch status…). Reads pass; anything that may
            // start work (an upload, an admitted batch) needs the budget to be open right now.
            if may_spend {
                match admit(&config, &limiter, Money::ZERO, now, None).await {
                    Admission::Reserved(r) => release(&config, &r).await,
                    Admission::Refused(refusal) => {
                        return Ok(refuse(&config, Some(&limiter), refusal))
                    }
                    Admission::StoreDown if config.fail_open => {}
                    Admission::StoreDown => {
                        return Ok(refuse(
                            &config,
                            Some(&limiter),
                            Refusal::store_unavailable(),
                        ));
                    }
                }
            }
            return passthrough(inner, Request::from_parts(parts, body)).await;
        }
    };
    let bytes = match Limited::new(body, config.max_request_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(refuse(
                &config,
                Some(&limiter),
                Refusal::too_large(config.max_request_bytes),
            ));
        }
        Err(_) => return Ok(refuse(&config, Some(&limiter), Refusal::unreadable_body())),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let info = RequestInfo::parse_with_content_type(endpoint, content_type, &bytes);
    // `model` and `user` are stored with the usage: bound them (a 4 MiB `user` must not become
    // 4 MiB on disk per request).
    let user = config
        .user_header
        .as_ref()
        .and_then(|h| parts.headers.get(h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| info.user.clone());
    for (field, value) in [("model", info.model.as_deref()), ("user", user.as_deref())] {
        if value.is_some_and(|v| v.chars().count() > MAX_LABEL_CHARS) {
            return Ok(refuse(
                &config,
                Some(&limiter),
                Refusal::field_too_long(field, MAX_LABEL_CHARS),
            ));
        }
    }

    if let Err(refusal) = crate::policy::check_request(&limiter, &info, user.as_deref()) {
        return Ok(refuse(&config, Some(&limiter), refusal));
    }

    let priced = info
        .model
        .as_deref()
        .is_some_and(|m| config.prices.lookup(m, limiter.provider).is_some());
    if !priced && limiter.unpriced == UnpricedPolicy::Refuse {
        return Ok(refuse(
            &config,
            Some(&limiter),
            Refusal::unpriced(info.model.as_deref()),
        ));
    }

    // 3. Ask for streamed usage if the client did not; hide it from the client again.
    let mut strip = false;
    let mut bytes = bytes;
    if config.inject_usage
        && info.stream
        && !info.include_usage
        && matches!(endpoint, Endpoint::ChatCompletions | Endpoint::Completions)
    {
        if let Some(rewritten) = info.rewrite_include_usage(&bytes) {
            bytes = Bytes::from(rewritten);
            strip = true;
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
    }

    // The prompt's token estimate, for a strict hold and the price guard: made once (the meter
    // reuses it) and, for a long prompt, off the async workers.
    let needs_estimate = info.model.is_some()
        && (limiter.mode == EnforcementMode::Strict || limiter.max_request_cost.is_some());
    let (mut info, prompt_estimate) = if needs_estimate {
        let (info, estimate) = estimate_prompt(info).await;
        (info, Some(estimate))
    } else {
        (info, None)
    };

    // The per-request price guard; it may give a request without an output limit one.
    let prompt_tokens = prompt_estimate.map_or(0, PromptEstimate::tokens);
    match crate::policy::price_guard(&config.prices, &limiter, &info, prompt_tokens) {
        Ok(None) => {}
        Ok(Some(limit)) => match crate::policy::set_output_limit(endpoint, &bytes, limit) {
            Some(rewritten) => {
                bytes = Bytes::from(rewritten);
                parts
                    .headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                info.max_output_tokens = Some(limit);
            }
            None => {
                let cap = limiter.max_request_cost.unwrap_or(Money::ZERO);
                return Ok(refuse(
                    &config,
                    Some(&limiter),
                    Refusal::request_too_costly(None, cap, ""),
                ));
            }
        },
        Err(refusal) => return Ok(refuse(&config, Some(&limiter), refusal)),
    }

    // 4. Reserve.
    let amount = hold_amount(&config, &limiter, &info, prompt_estimate);
    let reservation = match admit(&config, &limiter, amount, now, user.as_deref()).await {
        Admission::Reserved(r) => r,
        Admission::Refused(refusal) => return Ok(refuse(&config, Some(&limiter), refusal)),
        Admission::StoreDown if config.fail_open => {
            return passthrough(inner, Request::from_parts(parts, ReqBody::from(bytes))).await;
        }
        Admission::StoreDown => {
            return Ok(refuse(
                &config,
                Some(&limiter),
                Refusal::store_unavailable(),
            ));
        }
    };

    // From here until the response is handed over, a dropped future (the client gave up
    // before the upstream answered) must still return the hold.
    let mut guard = ReservationGuard {
        config: config.clone(),
        reservation: Some(reservation),
    };

    // 5. Call the inner service.
    let started = Instant::now();
    let res = match inner
        .call(Request::from_parts(parts, ReqBody::from(bytes)))
        .await
    {
        Ok(res) => res,
        Err(e) => {
            if let Some(reservation) = guard.reservation.take() {
                release(&config, &reservation).await;
            }
            return Err(e);
        }
    };
    let reservation = guard.reservation.take().expect("held until here");
    let status = res.status();
    if status.is_client_error() || status.is_server_error() {
        // The upstream refused or failed: nothing is billed. Record the request at $0 (its
        // status shows in the statistics) and return the hold.
        let mut record = UsageRecord::new(
            limiter.id,
            reservation.at,
            endpoint,
            &Usage {
                model: info.model.clone(),
                ..Usage::default()
            },
            Some(Money::ZERO),
        );
        record.user = user;
        record.status = status.as_u16();
        record.streamed = info.stream;
        record.latency_ms = started.elapsed().as_millis() as u64;
        settle(&config, &limiter, &reservation, record).await;
        return Ok(res.map(MeteredBody::passthrough));
    }

    // 6. Meter the body as it flows; settle when it ends or is dropped.
    let (mut head, body) = res.into_parts();
    let response_type = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let streamed = response_type.is_some_and(|ct| ct.starts_with("text/event-stream"));
    let mut meter =
        UsageMeter::new(info, response_type).with_max_event_bytes(config.max_event_bytes);
    if let Some(estimate) = prompt_estimate {
        meter = meter.with_prompt_estimate(estimate);
    }
    let strip = strip && streamed;
    if strip {
        head.headers.remove(header::CONTENT_LENGTH);
    }
    budget_headers(&mut head.headers, &reservation);
    let settlement = Settlement {
        config: config.clone(),
        limiter,
        reservation: Some(reservation),
        endpoint,
        user,
        status,
        streamed,
        started,
        meter: Some(meter),
    };
    Ok(Response::from_parts(
        head,
        MeteredBody::metered(body, settlement, strip),
    ))
}

/// What the store said about a request.
enum Admission {
    Reserved(Reservation),
    Refused(Refusal),
    /// The store failed (already logged and reported).
    StoreDown,
}

/// Ask the store to hold `amount` for the request, and turn its answer into a refusal where
/// it says no.
async fn admit(
    config: &Config,
    limiter: &Limiter,
    amount: Money,
    now: chrono::DateTime<Utc>,
    user: Option<&str>,
) -> Admission {
    let request = ReserveRequest {
        user: user.map(str::to_owned),
        ..ReserveRequest::new(limiter.id, amount, now)
    };
    match config.store.reserve(&request).await {
        Ok(ReserveOutcome::Reserved(r)) => Admission::Reserved(r),
        Ok(ReserveOutcome::Denied(d)) => Admission::Refused(match d.reason {
            DenialReason::Inactive => Refusal::inactive(),
            DenialReason::Expired => Refusal::expired(limiter.expires_at),
            DenialReason::BudgetExceeded => {
                let primary = d.user.is_none() && d.period == limiter.period_type;
                Refusal::budget_exceeded(&d, now, primary)
            }
        }),
        Err(StoreError::LimiterNotFound(_)) => Admission::Refused(Refusal::unknown_limiter()),
        Err(e) => {
            store_failed(config, &e);
            Admission::StoreDown
        }
    }
}

async fn passthrough<S, ReqBody, ResBody>(
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<MeteredBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    Ok(inner.call(req).await?.map(MeteredBody::passthrough))
}

/// What to hold for a request: in strict mode its worst case (prompt at full input price plus
/// `n ×` the output limit at the output price); in soft mode a cheap estimate of its prompt
/// (bytes / 4 tokens), so concurrent requests see the budget being used.
fn hold_amount(
    config: &Config,
    limiter: &Limiter,
    info: &RequestInfo,
    prompt_estimate: Option<PromptEstimate>,
) -> Money {
    let Some(model) = info.model.as_deref() else {
        return Money::ZERO;
    };
    match limiter.mode {
        EnforcementMode::Strict => config
            .prices
            .worst_case_cost(
                model,
                limiter.provider,
                prompt_estimate
                    .map_or_else(|| info.estimate_prompt_tokens(), PromptEstimate::tokens),
                info.max_output_tokens,
                info.n,
            )
            .total()
            .unwrap_or(Money::ZERO),
        EnforcementMode::Soft => {
            let usage = Usage {
                model: Some(model.to_owned()),
                prompt_tokens: (info.input_text.len() as u64).div_ceil(4),
                ..Usage::default()
            };
            config
                .prices
                .cost(&usage, limiter.provider)
                .total()
                .unwrap_or(Money::ZERO)
        }
    }
}

/// The request's prompt-token estimate, made on a blocking thread when the prompt is long.
async fn estimate_prompt(info: RequestInfo) -> (RequestInfo, PromptEstimate) {
    if !info.prompt_estimate_is_costly() {
        let estimate = info.prompt_estimate();
        return (info, estimate);
    }
    let counted = tokio::task::spawn_blocking(move || {
        let estimate = info.prompt_estimate();
        (info, estimate)
    });
    match counted.await {
        Ok(done) => done,
        // Only a panic in the tokenizer, or a runtime shutting down before the task ran.
        Err(e) => std::panic::resume_unwind(
            e.try_into_panic()
                .unwrap_or_else(|_| Box::new("runtime shut down during a prompt estimate")),
        ),
    }
}

/// Releases its reservation if dropped while still holding it.
struct ReservationGuard {
    config: Arc<Config>,
    reservation: Option<Reservation>,
}

impl Drop for ReservationGuard {
    fn drop(&mut self) {
        let Some(reservation) = self.reservation.take() else {
            return;
        };
        let config = self.config.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let settlements = config.settlements.clone();
                settlements.spawn(&handle, async move { release(&config, &reservation).await });
            }
            Err(_) => {
                tracing::error!(reservation = %reservation.id, "no Tokio runtime to release a reservation")
            }
        }
    }
}

async fn release(config: &Config, reservation: &Reservation) {
    if let Err(e) = config.store.release(reservation).await {
        tracing::error!(reservation = %reservation.id, error = %e, "releasing a reservation failed");
        config.hooks.store_error(&e);
    }
}

fn store_failed(config: &Config, e: &StoreError) {
    tracing::error!(error = %e, fail_open = config.fail_open, "budget store failed");
    config.hooks.store_error(e);
}

/// `x-budget-limit`, `x-budget-remaining` (dollars, after this request's hold) and
/// `x-budget-reset` (RFC 3339 end of the window).
fn budget_headers(headers: &mut HeaderMap, r: &Reservation) {
    crate::headers::put(headers, r.budget, r.remaining(), r.window.end);
}
