//! Bearer-token authentication with two roles. A route's role is declared once, by the
//! router group it is registered in (`routes/mod.rs`): [`protect`] puts the group behind a
//! middleware requiring that role, and marks its operations in the OpenAPI document.
//! `admin` may do everything a `producer` may. Tokens come from the settings (`[auth]`); they
//! are compared in constant time and never logged. Without tokens the gateway lets everything
//! in, which it accepts only on a loopback address ([`check_exposure`]).

use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::future::Either;
use secrecy::{ExposeSecret, SecretSlice};
use subtle::ConstantTimeEq;
use tower::{Layer, Service};
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::scope::Scope;
use crate::settings::{AuthSettings, Role};

/// The name of the bearer scheme in the OpenAPI document.
pub const SCHEME: &str = "bearer";

/// The configured tokens; none means "open" (loopback only).
pub struct Auth {
    tokens: Vec<(SecretSlice<u8>, Role, Scope)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("tokens", &self.tokens.len()).finish()
    }
}

impl Auth {
    pub fn from_settings(settings: &AuthSettings) -> Self {
        let tokens = settings
            .all()
            .into_iter()
            .map(|t| {
                let scope = Scope::new(&t.queues, &t.tasks);
                (t.token.expose_secret().as_bytes().to_vec().into(), t.role, scope)
            })
            .collect();
        Self { tokens }
    }

    /// No tokens configured: every request is let in.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Lets the request in if it carries a token of `needed` or a higher role: 401 without a
    /// (valid) token, 403 with a token of a lower role. Returns what the token may reach.
    pub fn authorize(&self, headers: &HeaderMap, needed: Role) -> Result<Scope, ApiError> {
        if self.is_open() {
            return Ok(Scope::default());
        }
        let presented = bearer(headers).ok_or(ApiError::Unauthorized { invalid_token: false })?;
        let (role, scope) = self
            .role_of(presented.as_bytes())
            .ok_or(ApiError::Unauthorized { invalid_token: true })?;
        if role < needed {
            return Err(ApiError::Forbidden(format!(
                "this endpoint needs a token with the {} role",
                name(needed)
            )));
        }
        Ok(scope)
    }

    /// The role of `presented`. Every token is compared, each in constant time: the time
    /// taken does not tell how much of a token matched.
    fn role_of(&self, presented: &[u8]) -> Option<(Role, Scope)> {
        let mut found = None;
        for (token, role, scope) in &self.tokens {
            if bool::from(token.expose_secret().ct_eq(presented)) {
                found = Some((*role, scope.clone()));
            }
        }
        found
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn name(role: Role) -> &'static str {
    match role {
        Role::Producer => "producer",
        Role::Admin => "admin",
    }
}

/// Refuses to serve without tokens on an address other hosts can reach.
pub fn check_exposure(bind: SocketAddr, auth: &Auth) -> anyhow::Result<()> {
    if auth.is_open() && !bind.ip().to_canonical().is_loopback() {
        anyhow::bail!(
            "refusing to start: http.bind is {bind}, which other hosts can reach, and no API tokens are \
             configured, so anyone could enqueue, revoke and read tasks. Configure tokens ([auth] tokens in \
             the config file, or CELERIAC__AUTH__ADMIN_TOKENS / CELERIAC__AUTH__PRODUCER_TOKENS), or bind a \
             loopback address such as 127.0.0.1"
        );
    }
    Ok(())
}

/// Puts every route of `router` behind a check for `role`, and documents it on each of its
/// operations: the bearer security requirement, the role, and the 401 (and 403) answers.
pub fn protect<S: Clone + Send + Sync + 'static>(router: OpenApiRouter<S>, role: Role) -> OpenApiRouter<S> {
    let mut router = router.route_layer(RequireRole(role));
    document(router.get_openapi_mut(), role);
    router
}

/// The check of [`protect`] as a layer: a request without a token of the role is answered
/// at once, one with it goes on to the route with its token's [`Scope`]. A plain service
/// rather than `middleware::from_fn`, which boxes the rest of the chain and a future for
/// every request: this runs on every request of the hot routes.
#[derive(Debug, Clone, Copy)]
struct RequireRole(Role);

impl<S> Layer<S> for RequireRole {
    type Service = RoleChecked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RoleChecked { inner, role: self.0 }
    }
}

#[derive(Debug, Clone)]
struct RoleChecked<S> {
    inner: S,
    role: Role,
}

impl<S> Service<Request> for RoleChecked<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match admit(&mut request, self.role) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(refusal) => Either::Left(ready(Ok(refusal.into_response()))),
        }
    }
}

/// Lets `request` in if its token has `role`, with the token's [`Scope`] in its extensions
/// (none for the unlimited scope, which [`Scope`]'s extractor gives by default). The
/// [`Auth`] comes from the request's extensions (put there by `startup`); without it,
/// nothing gets in.
fn admit(request: &mut Request, role: Role) -> Result<(), ApiError> {
    let Some(auth) = request.extensions().get::<Arc<Auth>>() else {
        return Err(ApiError::Internal("the authentication layer is missing".into()));
    };
    let scope = auth.authorize(request.headers(), role)?;
    if !scope.is_unlimited() {
        request.extensions_mut().insert(scope);
    }
    Ok(())
}

fn document(api: &mut OpenApi, role: Role) {
    for item in api.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            document_operation(operation, role);
        }
    }
}

fn document_operation(operation: &mut Operation, role: Role) {
    operation.security = Some(vec![SecurityRequirement::new(SCHEME, Vec::<String>::new())]);
    let note = match role {
        Role::Producer => "Needs a bearer token with the `producer` or `admin` role.",
        Role::Admin => "Needs a bearer token with the `admin` role.",
    };
    operation.description = Some(match operation.description.take() {
        Some(text) if !text.is_empty() => format!("{text}\n\n{note}"),
        _ => note.to_owned(),
    });
    let error = crate::contract::error_response;
    let responses = &mut operation.responses.responses;
    responses.insert("401".into(), error("No bearer token, or not a valid one").into());
    if role == Role::Admin {
        responses.insert("403".into(), error("The token's role may not use this endpoint").into());
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::settings::ApiToken;

    fn auth() -> Auth {
        Auth::from_settings(&AuthSettings {
            tokens: vec![ApiToken {
                name: "ci".into(),
                token: "producer-token-0123456789".into(),
                role: Role::Producer,
                queues: vec![],
                tasks: vec![],
            }],
            admin_tokens: vec!["admin-token-0123456789".into()],
            producer_tokens: vec![],
        })
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn roles_are_checked_and_admin_includes_producer() {
        let auth = auth();
        assert!(auth.authorize(&headers("Bearer producer-token-0123456789"), Role::Producer).is_ok());
        assert!(auth.authorize(&headers("bearer admin-token-0123456789"), Role::Producer).is_ok());
        assert!(auth.authorize(&headers("Bearer admin-token-0123456789"), Role::Admin).is_ok());
        assert!(matches!(
            auth.authorize(&headers("Bearer producer-token-0123456789"), Role::Admin),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn missing_malformed_or_wrong_tokens_are_unauthorized() {
        let auth = auth();
        let missing = ApiError::Unauthorized { invalid_token: false };
        let invalid = ApiError::Unauthorized { invalid_token: true };
        let check = |h: &HeaderMap| auth.authorize(h, Role::Producer).unwrap_err().to_string();
        assert_eq!(check(&HeaderMap::new()), missing.to_string());
        assert_eq!(check(&headers("Basic cHJvZHVjZXI6eA==")), missing.to_string());
        assert_eq!(check(&headers("Bearer ")), missing.to_string());
        assert_eq!(check(&headers("Bearer producer-token-012345678")), invalid.to_string());
        assert_eq!(check(&headers("Bearer producer-token-01234567890")), invalid.to_string());
    }

    #[tokio::test]
    async fn one_path_may_have_methods_of_different_roles() {
        use axum::body::Body;
        use axum::routing::{get, post};
        use tower::ServiceExt;

        let producer = OpenApiRouter::<()>::new().route("/things", post(|| async { "made" }));
        let admin = OpenApiRouter::<()>::new().route("/things", get(|| async { "listed" }));
        let (router, _) = OpenApiRouter::new()
            .merge(protect(producer, Role::Producer))
            .merge(protect(admin, Role::Admin))
            .split_for_parts();
        let router = router.layer(axum::Extension(Arc::new(auth())));
        let status = |method: &str, token: &str| {
            let request = Request::builder()
                .method(method)
                .uri("/things")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let router = router.clone();
            async move { router.oneshot(request).await.unwrap().status().as_u16() }
        };
        assert_eq!(status("POST", "producer-token-0123456789").await, 200);
        assert_eq!(status("GET", "producer-token-0123456789").await, 403);
        assert_eq!(status("GET", "admin-token-0123456789").await, 200);
        assert_eq!(status("GET", "wrong-token-0123456789").await, 401);
    }

    #[test]
    fn without_tokens_everything_is_let_in_but_only_on_loopback() {
        let open = Auth::from_settings(&AuthSettings::default());
        assert!(open.authorize(&HeaderMap::new(), Role::Admin).is_ok());
        assert!(check_exposure(([127, 0, 0, 1], 8000).into(), &open).is_ok());
        assert!(check_exposure("[::1]:8000".parse().unwrap(), &open).is_ok());
        assert!(check_exposure("[::ffff:127.0.0.1]:8000".parse().unwrap(), &open).is_ok());
        assert!(check_exposure(([0, 0, 0, 0], 8000).into(), &open).is_err());
        assert!(check_exposure(([10, 0, 0, 5], 8000).into(), &open).is_err());
        assert!(check_exposure(([0, 0, 0, 0], 8000).into(), &auth()).is_ok());
    }
}
