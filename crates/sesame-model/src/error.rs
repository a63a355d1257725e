//! The domain error. Each kind is protocol-neutral; `sesame-wire` maps it to
//! the v1 Query code or the v2 REST-JSON exception and HTTP status.

/// What went wrong, in SES's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Input failed a rule (v1 `InvalidParameterValue`, v2 `BadRequestException`).
    InvalidParameter,
    /// A required member was missing or a constraint failed in the
    /// "N validation errors detected" form (v1 `ValidationError`, v2 `BadRequestException`).
    Validation,
    /// The resource exists already.
    AlreadyExists,
    /// The named resource does not exist.
    NotFound,
    /// A count limit was reached.
    LimitExceeded,
    /// A send was refused (unverified identities and the like): `MessageRejected`.
    MessageRejected,
    /// Sending is disabled for the account (v1 `AccountSendingPausedException`,
    /// v2 `SendingPausedException`).
    SendingPaused,
    /// A custom MAIL FROM domain is not verified and its behaviour on MX
    /// failure is to reject (`MailFromDomainNotVerifiedException`).
    MailFromDomainNotVerified,
    /// The rolling 24-hour quota is used up (v1 `Throttling`, v2 `LimitExceededException`).
    DailyQuotaExceeded,
    /// The per-second rate is exceeded (v1 `Throttling`, v2 `TooManyRequestsException`).
    RateExceeded,
    /// Conflicts with work in progress (v2 `ConflictException`).
    Conflict,
    /// The named configuration set does not exist.
    ConfigurationSetDoesNotExist,
    /// A configuration set of that name exists (v1
    /// `ConfigurationSetAlreadyExists`, v2 `AlreadyExistsException`).
    ConfigurationSetAlreadyExists,
    /// The configuration set's name or settings are not valid (v1
    /// `InvalidConfigurationSet`, v2 `BadRequestException`).
    InvalidConfigurationSet,
    /// Sending is disabled on the named configuration set (v1
    /// `ConfigurationSetSendingPausedException`, v2 `SendingPausedException`).
    ConfigurationSetSendingPaused,
    /// The named template does not exist.
    TemplateDoesNotExist,
    /// Template data lacks an attribute the template uses.
    MissingRenderingAttribute,
    /// Template data is not valid.
    InvalidRenderingParameter,
    /// The template itself is not valid.
    InvalidTemplate,
    /// A configuration set already has an event destination of that name.
    EventDestinationAlreadyExists,
    /// The configuration set has no event destination of that name.
    EventDestinationDoesNotExist,
    /// An event destination names an SNS topic that does not exist.
    InvalidSnsDestination,
    /// SNS: the topic or subscription does not exist (`NotFound`, 404).
    SnsNotFound,
    /// SNS: a parameter is not valid (`InvalidParameter`, 400).
    SnsInvalidParameter,
    /// SNS: not allowed, e.g. confirming with a wrong token (`AuthorizationError`, 403).
    SnsAuthorization,
    /// A custom verification email template of that name exists.
    CustomVerificationTemplateAlreadyExists,
    /// The named custom verification email template does not exist.
    CustomVerificationTemplateDoesNotExist,
    /// A custom verification email template's content is not allowed.
    CustomVerificationInvalidContent,
    /// A custom verification template's From address is not verified.
    FromEmailAddressNotVerified,
    /// The operation needs production access; the account is in the sandbox.
    ProductionAccessNotGranted,
    /// A concurrent update won; the caller may retry.
    ConcurrentModification,
    /// Sesame does not implement this yet; the message names what.
    NotImplemented,
    /// A fault inside Sesame (store failure and the like).
    Internal,
}

/// A domain error: a kind and the message SES would send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    /// AWS's wording for a missing required member, e.g.
    /// `1 validation error detected: Value null at 'emailIdentity' failed to
    /// satisfy constraint: Member must not be null`.
    pub fn missing(member: &str) -> Self {
        Self::new(
            ErrorKind::Validation,
            format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(member)
            ),
        )
    }
    /// AWS's wording for a violated constraint on one member.
    pub fn constraint(member: &str, value: &str, constraint: &str) -> Self {
        Self::new(
            ErrorKind::Validation,
            format!(
                "1 validation error detected: Value '{value}' at '{}' failed to satisfy constraint: {constraint}",
                lower_first(member)
            ),
        )
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_member_uses_aws_wording() {
        let e = Error::missing("EmailIdentity");
        assert_eq!(e.kind, ErrorKind::Validation);
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'emailIdentity' failed to satisfy constraint: Member must not be null"
        );
    }
}
