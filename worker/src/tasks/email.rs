//! `send_email`: sends one plain-text e-mail through the configured SMTP server with lettre.
//!
//! A refusal (a 5xx reply, such as an unknown recipient) is permanent, so the task fails at
//! once with `SmtpRejected` and the server's reason; a server that cannot be reached, times out
//! or answers 4xx is retried (`SmtpUnavailable`). The Message-ID is derived from the task id,
//! so a retry of the same task sends the same Message-ID and receivers can spot duplicates.

use std::time::Duration;

use celeriac::builtin::{SEND_EMAIL, SendEmailArgs};
use celeriac::{QueueName, Task, TaskContext, TaskError, TaskOptions, TaskSpec};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::settings::SmtpSettings;

/// The `send_email` task, holding a transport built once from the settings.
pub struct SendEmail {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Settings that cannot make a working SMTP transport.
#[derive(Debug, thiserror::Error)]
pub enum EmailSetupError {
    #[error("smtp.from {0:?} is not a mailbox such as \"Celeriac <celeriac@example.com>\": {1}")]
    InvalidFrom(String, lettre::address::AddressError),
    #[error("smtp.security {0:?} must be one of none, starttls, tls")]
    UnknownSecurity(String),
    #[error("cannot set up TLS for smtp.host {0:?}: {1}")]
    Tls(String, lettre::transport::smtp::Error),
}

impl SendEmail {
    /// Builds the transport: `none` is plain SMTP (a local sink or relay), `starttls` upgrades
    /// the connection and `tls` starts encrypted; both verify the server's certificate.
    /// `smtp.port` is used in every mode, so set 587 (`starttls`) or 465 (`tls`) explicitly.
    pub fn from_settings(settings: &SmtpSettings) -> Result<Self, EmailSetupError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| EmailSetupError::InvalidFrom(settings.from.clone(), e))?;
        let host = settings.host.as_str();
        let tls_error = |e| EmailSetupError::Tls(settings.host.clone(), e);
        let builder = match settings.security.as_str() {
            "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host).map_err(tls_error)?,
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?,
            other => return Err(EmailSetupError::UnknownSecurity(other.to_owned())),
        };
        let mut builder = builder
            .port(settings.port)
            .timeout(Some(settings.timeout.max(Duration::from_secs(1))));
        if let Some(username) = &settings.username {
            let password = settings.password.as_ref().map(SecretString::expose_secret).unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password.to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }

    /// The message for `args`, with a Message-ID derived from the task id.
    fn message(&self, ctx: &TaskContext, args: SendEmailArgs) -> Result<(Message, String), TaskError> {
        let invalid = |message: String| TaskError::permanent(message).with_kind("InvalidArgs");
        let to: Mailbox = args.to.parse().map_err(|e| invalid(format!("to {:?}: {e}", args.to)))?;
        let message_id = format!("<celeriac.{}@{}>", ctx.task_id().suffix(), self.from.email.domain());
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(args.subject)
            .message_id(Some(message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(args.body)
            .map_err(|e| invalid(format!("cannot build the message: {e}")))?;
        Ok((message, message_id))
    }
}

impl Task for SendEmail {
    type Args = SendEmailArgs;
    type Output = Value;

    fn spec(&self) -> TaskSpec {
        let queue = QueueName::parse("emails").expect("a valid queue name");
        TaskSpec {
            name: SEND_EMAIL.into(),
            queue,
            options: TaskOptions {
                max_retries: Some(3),
                ..TaskOptions::default()
            },
        }
    }

    async fn run(&self, ctx: TaskContext, args: SendEmailArgs) -> Result<Value, TaskError> {
        args.validate()
            .map_err(|e| TaskError::permanent(format!("{}: {}", e.field, e.message)).with_kind("InvalidArgs"))?;
        let (message, message_id) = self.message(&ctx, args)?;
        let response = self.transport.send(message).await.map_err(smtp_error)?;
        let response = response.message().collect::<Vec<_>>().join(" ");
        tracing::info!(task_id = %ctx.task_id(), %message_id, %response, "e-mail accepted by the SMTP server");
        Ok(json!({ "accepted": true, "response": response, "message_id": message_id }))
    }
}

/// Permanent refusals (5xx) fail the task; everything else may pass on another attempt.
fn smtp_error(e: lettre::transport::smtp::Error) -> TaskError {
    if e.is_permanent() {
        TaskError::permanent(format!("the SMTP server refused the message: {e}")).with_kind("SmtpRejected")
    } else {
        TaskError::retryable(format!("the SMTP server could not take the message: {e}")).with_kind("SmtpUnavailable")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use celeriac::TaskId;
    use celeriac_testkit::SmtpSink;

    fn settings(port: u16) -> SmtpSettings {
        SmtpSettings {
            port,
            from: "Celeriac <noreply@celeriac.test>".into(),
            timeout: Duration::from_secs(5),
            ..SmtpSettings::default()
        }
    }

    fn ctx() -> TaskContext {
        TaskContext::detached(TaskId::generate(&QueueName::parse("emails").unwrap()))
    }

    fn args(to: &str) -> SendEmailArgs {
        SendEmailArgs {
            to: to.into(),
            subject: "Welcome aboard".into(),
            body: "Hello Ada,\nthanks for signing up.".into(),
        }
    }

    #[tokio::test]
    async fn delivers_to_the_sink() {
        let sink = SmtpSink::start().await;
        let task = SendEmail::from_settings(&settings(sink.port())).unwrap();
        let out = task.run(ctx(), args("ada@example.com")).await.unwrap();

        let mails = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.from, "noreply@celeriac.test");
        assert_eq!(mail.to, ["ada@example.com"]);
        assert_eq!(mail.subject(), "Welcome aboard");
        assert_eq!(mail.body(), "Hello Ada,\nthanks for signing up.");
        assert_eq!(out["accepted"], true);
        assert_eq!(out["response"], format!("2.0.0 Ok: queued as {}", mail.queue_id));
        assert_eq!(mail.header("Message-ID").as_deref(), out["message_id"].as_str());
    }

    #[tokio::test]
    async fn non_ascii_text_and_long_lines_survive_the_trip() {
        let sink = SmtpSink::start().await;
        let task = SendEmail::from_settings(&settings(sink.port())).unwrap();
        let body = format!("Grüße, Zoë!\n{}\nend", "long line ".repeat(30));
        let args = SendEmailArgs {
            to: "zoe@example.com".into(),
            subject: "Crème brûlée ✓".into(),
            body: body.clone(),
        };
        task.run(ctx(), args).await.unwrap();
        let mails = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(mails[0].subject(), "Crème brûlée ✓");
        assert_eq!(mails[0].body(), body);
    }

    #[tokio::test]
    async fn a_refused_recipient_is_permanent() {
        let sink = SmtpSink::start().await;
        let task = SendEmail::from_settings(&settings(sink.port())).unwrap();
        let err = task.run(ctx(), args("bob@reject.test")).await.unwrap_err();
        assert_eq!(err.kind, "SmtpRejected");
        assert!(!err.retryable);
        assert!(err.message.contains("Recipient address rejected"), "{}", err.message);
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn a_closed_port_is_retryable() {
        let task = SendEmail::from_settings(&settings(celeriac_testkit::free_port())).unwrap();
        let err = task.run(ctx(), args("ada@example.com")).await.unwrap_err();
        assert_eq!(err.kind, "SmtpUnavailable");
        assert!(err.retryable);
    }

    #[tokio::test]
    async fn bad_arguments_are_permanent() {
        let task = SendEmail::from_settings(&settings(1)).unwrap();
        let err = task.run(ctx(), args("not-an-address")).await.unwrap_err();
        assert_eq!((err.kind.as_str(), err.retryable), ("InvalidArgs", false));
    }

    #[test]
    fn settings_are_checked_and_tls_modes_build() {
        let mut s = settings(465);
        s.security = "tls".into();
        s.username = Some("user".into());
        assert!(SendEmail::from_settings(&s).is_ok());
        s.security = "starttls".into();
        assert!(SendEmail::from_settings(&s).is_ok());
        s.security = "ssl".into();
        assert!(matches!(SendEmail::from_settings(&s), Err(EmailSetupError::UnknownSecurity(_))));
        s.security = "none".into();
        s.from = "not a mailbox".into();
        assert!(matches!(SendEmail::from_settings(&s), Err(EmailSetupError::InvalidFrom(..))));
    }

    #[test]
    fn spec_matches_the_builtin_one() {
        let task = SendEmail::from_settings(&settings(1025)).unwrap();
        let builtin = celeriac::builtin::specs().into_iter().find(|s| s.name == SEND_EMAIL).unwrap();
        let spec = task.spec();
        assert_eq!(
            (spec.name, spec.queue, spec.options),
            (builtin.name, builtin.queue, builtin.options)
        );
    }
}
