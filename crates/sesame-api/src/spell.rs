//! The domain's enums in each API's spelling. The spellings themselves are
//! the generated enums' (`as_str`); this is only which is which.

use sesame_model::account::ReviewStatus;
use sesame_model::{
    DkimOrigin, Error, IdentityKind, KeyLength, VerificationStatus, verification::VerificationError,
};
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2};

pub fn v1_status(s: VerificationStatus) -> v1::VerificationStatus {
    match s {
        VerificationStatus::Pending => v1::VerificationStatus::Pending,
        VerificationStatus::Success => v1::VerificationStatus::Success,
        VerificationStatus::Failed => v1::VerificationStatus::Failed,
        VerificationStatus::TemporaryFailure => v1::VerificationStatus::TemporaryFailure,
        VerificationStatus::NotStarted => v1::VerificationStatus::NotStarted,
    }
}

/// A custom MAIL FROM domain is never `NotStarted` while it is set.
pub fn v1_mail_from_status(s: VerificationStatus) -> v1::CustomMailFromStatus {
    match s {
        VerificationStatus::Success => v1::CustomMailFromStatus::Success,
        VerificationStatus::Failed => v1::CustomMailFromStatus::Failed,
        VerificationStatus::TemporaryFailure => v1::CustomMailFromStatus::TemporaryFailure,
        VerificationStatus::Pending | VerificationStatus::NotStarted => {
            v1::CustomMailFromStatus::Pending
        }
    }
}

pub fn v2_status(s: VerificationStatus) -> v2::VerificationStatus {
    match s {
        VerificationStatus::Pending => v2::VerificationStatus::Pending,
        VerificationStatus::Success => v2::VerificationStatus::Success,
        VerificationStatus::Failed => v2::VerificationStatus::Failed,
        VerificationStatus::TemporaryFailure => v2::VerificationStatus::TemporaryFailure,
        VerificationStatus::NotStarted => v2::VerificationStatus::NotStarted,
    }
}

pub fn v2_dkim_status(s: VerificationStatus) -> v2::DkimStatus {
    match s {
        VerificationStatus::Pending => v2::DkimStatus::Pending,
        VerificationStatus::Success => v2::DkimStatus::Success,
        VerificationStatus::Failed => v2::DkimStatus::Failed,
        VerificationStatus::TemporaryFailure => v2::DkimStatus::TemporaryFailure,
        VerificationStatus::NotStarted => v2::DkimStatus::NotStarted,
    }
}

pub fn v2_mail_from_status(s: VerificationStatus) -> v2::MailFromDomainStatus {
    match s {
        VerificationStatus::Success => v2::MailFromDomainStatus::Success,
        VerificationStatus::Failed => v2::MailFromDomainStatus::Failed,
        VerificationStatus::TemporaryFailure => v2::MailFromDomainStatus::TemporaryFailure,
        VerificationStatus::Pending | VerificationStatus::NotStarted => {
            v2::MailFromDomainStatus::Pending
        }
    }
}

pub fn v2_status_in(s: v2::VerificationStatus) -> VerificationStatus {
    match s {
        v2::VerificationStatus::Pending => VerificationStatus::Pending,
        v2::VerificationStatus::Success => VerificationStatus::Success,
        v2::VerificationStatus::Failed => VerificationStatus::Failed,
        v2::VerificationStatus::TemporaryFailure => VerificationStatus::TemporaryFailure,
        v2::VerificationStatus::NotStarted => VerificationStatus::NotStarted,
    }
}

pub fn v2_origin(o: DkimOrigin) -> v2::DkimSigningAttributesOrigin {
    match o {
        DkimOrigin::AwsSes => v2::DkimSigningAttributesOrigin::AwsSes,
        DkimOrigin::External => v2::DkimSigningAttributesOrigin::External,
    }
}

pub fn v2_key_length(l: KeyLength) -> v2::DkimSigningKeyLength {
    match l {
        KeyLength::Rsa1024 => v2::DkimSigningKeyLength::Rsa1024Bit,
        KeyLength::Rsa2048 => v2::DkimSigningKeyLength::Rsa2048Bit,
    }
}

pub fn v2_key_length_in(l: v2::DkimSigningKeyLength) -> KeyLength {
    match l {
        v2::DkimSigningKeyLength::Rsa1024Bit => KeyLength::Rsa1024,
        v2::DkimSigningKeyLength::Rsa2048Bit => KeyLength::Rsa2048,
    }
}

pub fn v2_verification_error(e: VerificationError) -> v2::VerificationError {
    match e {
        VerificationError::ServiceError => v2::VerificationError::ServiceError,
        VerificationError::DnsServerError => v2::VerificationError::DnsServerError,
        VerificationError::HostNotFound => v2::VerificationError::HostNotFound,
        VerificationError::TypeNotFound => v2::VerificationError::TypeNotFound,
        VerificationError::InvalidValue => v2::VerificationError::InvalidValue,
    }
}

pub fn v2_identity_type(k: IdentityKind) -> v2::IdentityType {
    match k {
        IdentityKind::EmailAddress => v2::IdentityType::EmailAddress,
        IdentityKind::Domain => v2::IdentityType::Domain,
    }
}

pub fn v2_identity_type_in(t: v2::IdentityType) -> Result<IdentityKind, Error> {
    match t {
        v2::IdentityType::EmailAddress => Ok(IdentityKind::EmailAddress),
        v2::IdentityType::Domain => Ok(IdentityKind::Domain),
        v2::IdentityType::ManagedDomain => Err(Error::new(
            sesame_model::ErrorKind::NotImplemented,
            "Sesame does not implement managed domains yet.",
        )),
    }
}

pub fn v1_identity_type_in(t: v1::IdentityType) -> IdentityKind {
    match t {
        v1::IdentityType::EmailAddress => IdentityKind::EmailAddress,
        v1::IdentityType::Domain => IdentityKind::Domain,
    }
}

pub fn v2_review(s: ReviewStatus) -> v2::ReviewStatus {
    match s {
        ReviewStatus::Pending => v2::ReviewStatus::Pending,
        ReviewStatus::Failed => v2::ReviewStatus::Failed,
        ReviewStatus::Granted => v2::ReviewStatus::Granted,
        ReviewStatus::Denied => v2::ReviewStatus::Denied,
    }
}

/// v1 SendBulkTemplatedEmail's per-destination status for an error.
pub fn v1_bulk_status(kind: sesame_model::ErrorKind) -> v1::BulkEmailStatus {
    use sesame_model::ErrorKind as K;
    use v1::BulkEmailStatus as S;
    match kind {
        K::MessageRejected => S::MessageRejected,
        K::DailyQuotaExceeded => S::AccountDailyQuotaExceeded,
        K::RateExceeded => S::AccountThrottled,
        K::SendingPaused => S::AccountSendingPaused,
        K::MailFromDomainNotVerified => S::MailFromDomainNotVerified,
        K::ConfigurationSetDoesNotExist => S::ConfigurationSetDoesNotExist,
        K::ConfigurationSetSendingPaused => S::ConfigurationSetSendingPaused,
        K::TemplateDoesNotExist => S::TemplateDoesNotExist,
        K::InvalidParameter | K::Validation | K::InvalidRenderingParameter => {
            S::InvalidParameterValue
        }
        K::ConcurrentModification | K::Internal => S::TransientFailure,
        _ => S::Failed,
    }
}

/// v2 SendBulkEmail's per-entry status for an error.
pub fn v2_bulk_status(kind: sesame_model::ErrorKind) -> v2::BulkEmailStatus {
    use sesame_model::ErrorKind as K;
    use v2::BulkEmailStatus as S;
    match kind {
        K::MessageRejected => S::MessageRejected,
        K::DailyQuotaExceeded => S::AccountDailyQuotaExceeded,
        K::RateExceeded => S::AccountThrottled,
        K::SendingPaused => S::AccountSendingPaused,
        K::MailFromDomainNotVerified => S::MailFromDomainNotVerified,
        K::ConfigurationSetDoesNotExist => S::ConfigurationSetNotFound,
        K::ConfigurationSetSendingPaused => S::ConfigurationSetSendingPaused,
        K::TemplateDoesNotExist => S::TemplateNotFound,
        K::InvalidParameter | K::Validation | K::InvalidRenderingParameter => S::InvalidParameter,
        K::ConcurrentModification | K::Internal => S::TransientFailure,
        _ => S::Failed,
    }
}

/// v1's event types; v1 cannot name DeliveryDelay.
pub fn v1_event_type(k: sesame_model::EventKind) -> Option<v1::EventType> {
    use sesame_model::EventKind as K;
    Some(match k {
        K::Send => v1::EventType::Send,
        K::Reject => v1::EventType::Reject,
        K::Bounce => v1::EventType::Bounce,
        K::Complaint => v1::EventType::Complaint,
        K::Delivery => v1::EventType::Delivery,
        K::Open => v1::EventType::Open,
        K::Click => v1::EventType::Click,
        K::RenderingFailure => v1::EventType::RenderingFailure,
        K::DeliveryDelay => return None,
    })
}

pub fn v1_event_kind(t: v1::EventType) -> sesame_model::EventKind {
    use sesame_model::EventKind as K;
    match t {
        v1::EventType::Send => K::Send,
        v1::EventType::Reject => K::Reject,
        v1::EventType::Bounce => K::Bounce,
        v1::EventType::Complaint => K::Complaint,
        v1::EventType::Delivery => K::Delivery,
        v1::EventType::Open => K::Open,
        v1::EventType::Click => K::Click,
        v1::EventType::RenderingFailure => K::RenderingFailure,
    }
}

pub fn v2_event_type(k: sesame_model::EventKind) -> v2::EventType {
    use sesame_model::EventKind as K;
    match k {
        K::Send => v2::EventType::Send,
        K::Reject => v2::EventType::Reject,
        K::Bounce => v2::EventType::Bounce,
        K::Complaint => v2::EventType::Complaint,
        K::Delivery => v2::EventType::Delivery,
        K::Open => v2::EventType::Open,
        K::Click => v2::EventType::Click,
        K::RenderingFailure => v2::EventType::RenderingFailure,
        K::DeliveryDelay => v2::EventType::DeliveryDelay,
    }
}

/// v2's event types; SUBSCRIPTION (list-management events) has no
/// counterpart in Sesame, which has no contact lists.
pub fn v2_event_kind(t: v2::EventType) -> Option<sesame_model::EventKind> {
    use sesame_model::EventKind as K;
    Some(match t {
        v2::EventType::Send => K::Send,
        v2::EventType::Reject => K::Reject,
        v2::EventType::Bounce => K::Bounce,
        v2::EventType::Complaint => K::Complaint,
        v2::EventType::Delivery => K::Delivery,
        v2::EventType::Open => K::Open,
        v2::EventType::Click => K::Click,
        v2::EventType::RenderingFailure => K::RenderingFailure,
        v2::EventType::DeliveryDelay => K::DeliveryDelay,
        v2::EventType::Subscription => return None,
    })
}

/// v1's notification types, as event kinds.
pub fn v1_notification_kind(t: v1::NotificationType) -> sesame_model::EventKind {
    match t {
        v1::NotificationType::Bounce => sesame_model::EventKind::Bounce,
        v1::NotificationType::Complaint => sesame_model::EventKind::Complaint,
        v1::NotificationType::Delivery => sesame_model::EventKind::Delivery,
    }
}

pub fn v2_reason(r: sesame_model::suppression::Reason) -> v2::SuppressionListReason {
    match r {
        sesame_model::suppression::Reason::Bounce => v2::SuppressionListReason::Bounce,
        sesame_model::suppression::Reason::Complaint => v2::SuppressionListReason::Complaint,
    }
}

pub fn v2_reason_in(r: v2::SuppressionListReason) -> sesame_model::suppression::Reason {
    match r {
        v2::SuppressionListReason::Bounce => sesame_model::suppression::Reason::Bounce,
        v2::SuppressionListReason::Complaint => sesame_model::suppression::Reason::Complaint,
    }
}

/// A list of reasons as given, without repeats.
pub fn v2_reasons_in(rs: Vec<v2::SuppressionListReason>) -> Vec<sesame_model::suppression::Reason> {
    let mut out = vec![];
    for r in rs.into_iter().map(v2_reason_in) {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

pub fn v2_bounce_type(t: sesame_model::delivery::BounceType) -> v2::BounceType {
    use sesame_model::delivery::BounceType as B;
    match t {
        B::Permanent => v2::BounceType::Permanent,
        B::Transient => v2::BounceType::Transient,
        B::Undetermined => v2::BounceType::Undetermined,
    }
}
