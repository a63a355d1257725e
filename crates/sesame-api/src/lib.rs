//! SES's operations, served: each family module turns a generated wire
//! input into a use case call and its result into the generated wire
//! output. The traits (`SesV1`, `SesV2`, `Sns`) and their dispatchers are
//! generated from AWS's models in `sesame-wire`; an operation not listed
//! here keeps the trait's default, which answers `NotImplemented` naming it.
//!
//! Adding an operation: write `vN_<operation>` in its family's module,
//! and add the one method below that calls it.

pub mod account;
pub mod custom_verification;
pub mod identities;
pub mod sending;
mod spell;
pub mod templates;

use sesame_core::{
    AccountService, CustomVerificationService, IdentityService, SendService, TemplateService,
};
use sesame_model::{Error, Scope, Tag};
use sesame_wire::generated::{ses_v1 as v1, sesv2 as v2, sns};
use std::sync::Arc;

type R<T> = Result<T, Error>;

/// The use cases the operations call.
pub struct Api {
    pub identities: IdentityService,
    pub accounts: Arc<AccountService>,
    pub sending: SendService,
    pub templates: TemplateService,
    pub custom_verification: CustomVerificationService,
}

/// v2 tags, whose members the model requires.
fn tags_in(tags: Option<Vec<v2::Tag>>) -> Vec<Tag> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value,
        })
        .collect()
}

fn tags_out(tags: &[Tag]) -> Vec<v2::Tag> {
    tags.iter()
        .map(|t| v2::Tag {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect()
}

impl v1::SesV1 for Api {
    type Caller = Scope;

    // identities
    async fn verify_email_identity(
        &self,
        s: &Scope,
        i: v1::VerifyEmailIdentityRequest,
    ) -> R<v1::VerifyEmailIdentityResponse> {
        identities::v1_verify_email_identity(self, s, i).await
    }
    async fn verify_email_address(&self, s: &Scope, i: v1::VerifyEmailAddressRequest) -> R<()> {
        identities::v1_verify_email_address(self, s, i).await
    }
    async fn verify_domain_identity(
        &self,
        s: &Scope,
        i: v1::VerifyDomainIdentityRequest,
    ) -> R<v1::VerifyDomainIdentityResponse> {
        identities::v1_verify_domain_identity(self, s, i).await
    }
    async fn verify_domain_dkim(
        &self,
        s: &Scope,
        i: v1::VerifyDomainDkimRequest,
    ) -> R<v1::VerifyDomainDkimResponse> {
        identities::v1_verify_domain_dkim(self, s, i).await
    }
    async fn list_identities(
        &self,
        s: &Scope,
        i: v1::ListIdentitiesRequest,
    ) -> R<v1::ListIdentitiesResponse> {
        identities::v1_list_identities(self, s, i).await
    }
    async fn list_verified_email_addresses(
        &self,
        s: &Scope,
    ) -> R<v1::ListVerifiedEmailAddressesResponse> {
        identities::v1_list_verified_email_addresses(self, s).await
    }
    async fn get_identity_verification_attributes(
        &self,
        s: &Scope,
        i: v1::GetIdentityVerificationAttributesRequest,
    ) -> R<v1::GetIdentityVerificationAttributesResponse> {
        identities::v1_get_identity_verification_attributes(self, s, i).await
    }
    async fn get_identity_dkim_attributes(
        &self,
        s: &Scope,
        i: v1::GetIdentityDkimAttributesRequest,
    ) -> R<v1::GetIdentityDkimAttributesResponse> {
        identities::v1_get_identity_dkim_attributes(self, s, i).await
    }
    async fn set_identity_mail_from_domain(
        &self,
        s: &Scope,
        i: v1::SetIdentityMailFromDomainRequest,
    ) -> R<v1::SetIdentityMailFromDomainResponse> {
        identities::v1_set_identity_mail_from_domain(self, s, i).await
    }
    async fn get_identity_mail_from_domain_attributes(
        &self,
        s: &Scope,
        i: v1::GetIdentityMailFromDomainAttributesRequest,
    ) -> R<v1::GetIdentityMailFromDomainAttributesResponse> {
        identities::v1_get_identity_mail_from_domain_attributes(self, s, i).await
    }
    async fn set_identity_dkim_enabled(
        &self,
        s: &Scope,
        i: v1::SetIdentityDkimEnabledRequest,
    ) -> R<v1::SetIdentityDkimEnabledResponse> {
        identities::v1_set_identity_dkim_enabled(self, s, i).await
    }
    async fn delete_identity(
        &self,
        s: &Scope,
        i: v1::DeleteIdentityRequest,
    ) -> R<v1::DeleteIdentityResponse> {
        identities::v1_delete_identity(self, s, i).await
    }
    async fn delete_verified_email_address(
        &self,
        s: &Scope,
        i: v1::DeleteVerifiedEmailAddressRequest,
    ) -> R<()> {
        identities::v1_delete_verified_email_address(self, s, i).await
    }

    // sending
    async fn send_email(&self, s: &Scope, i: v1::SendEmailRequest) -> R<v1::SendEmailResponse> {
        sending::v1_send_email(self, s, i).await
    }
    async fn send_raw_email(
        &self,
        s: &Scope,
        i: v1::SendRawEmailRequest,
    ) -> R<v1::SendRawEmailResponse> {
        sending::v1_send_raw_email(self, s, i).await
    }
    async fn send_templated_email(
        &self,
        s: &Scope,
        i: v1::SendTemplatedEmailRequest,
    ) -> R<v1::SendTemplatedEmailResponse> {
        sending::v1_send_templated_email(self, s, i).await
    }
    async fn send_bulk_templated_email(
        &self,
        s: &Scope,
        i: v1::SendBulkTemplatedEmailRequest,
    ) -> R<v1::SendBulkTemplatedEmailResponse> {
        sending::v1_send_bulk_templated_email(self, s, i).await
    }

    // templates
    async fn create_template(
        &self,
        s: &Scope,
        i: v1::CreateTemplateRequest,
    ) -> R<v1::CreateTemplateResponse> {
        templates::v1_create_template(self, s, i).await
    }
    async fn update_template(
        &self,
        s: &Scope,
        i: v1::UpdateTemplateRequest,
    ) -> R<v1::UpdateTemplateResponse> {
        templates::v1_update_template(self, s, i).await
    }
    async fn get_template(
        &self,
        s: &Scope,
        i: v1::GetTemplateRequest,
    ) -> R<v1::GetTemplateResponse> {
        templates::v1_get_template(self, s, i).await
    }
    async fn delete_template(
        &self,
        s: &Scope,
        i: v1::DeleteTemplateRequest,
    ) -> R<v1::DeleteTemplateResponse> {
        templates::v1_delete_template(self, s, i).await
    }
    async fn list_templates(
        &self,
        s: &Scope,
        i: v1::ListTemplatesRequest,
    ) -> R<v1::ListTemplatesResponse> {
        templates::v1_list_templates(self, s, i).await
    }
    async fn test_render_template(
        &self,
        s: &Scope,
        i: v1::TestRenderTemplateRequest,
    ) -> R<v1::TestRenderTemplateResponse> {
        templates::v1_test_render_template(self, s, i).await
    }

    // custom_verification
    async fn create_custom_verification_email_template(
        &self,
        s: &Scope,
        i: v1::CreateCustomVerificationEmailTemplateRequest,
    ) -> R<()> {
        custom_verification::v1_create_custom_verification_email_template(self, s, i).await
    }
    async fn update_custom_verification_email_template(
        &self,
        s: &Scope,
        i: v1::UpdateCustomVerificationEmailTemplateRequest,
    ) -> R<()> {
        custom_verification::v1_update_custom_verification_email_template(self, s, i).await
    }
    async fn get_custom_verification_email_template(
        &self,
        s: &Scope,
        i: v1::GetCustomVerificationEmailTemplateRequest,
    ) -> R<v1::GetCustomVerificationEmailTemplateResponse> {
        custom_verification::v1_get_custom_verification_email_template(self, s, i).await
    }
    async fn delete_custom_verification_email_template(
        &self,
        s: &Scope,
        i: v1::DeleteCustomVerificationEmailTemplateRequest,
    ) -> R<()> {
        custom_verification::v1_delete_custom_verification_email_template(self, s, i).await
    }
    async fn list_custom_verification_email_templates(
        &self,
        s: &Scope,
        i: v1::ListCustomVerificationEmailTemplatesRequest,
    ) -> R<v1::ListCustomVerificationEmailTemplatesResponse> {
        custom_verification::v1_list_custom_verification_email_templates(self, s, i).await
    }
    async fn send_custom_verification_email(
        &self,
        s: &Scope,
        i: v1::SendCustomVerificationEmailRequest,
    ) -> R<v1::SendCustomVerificationEmailResponse> {
        custom_verification::v1_send_custom_verification_email(self, s, i).await
    }

    // account
    async fn get_send_quota(&self, s: &Scope) -> R<v1::GetSendQuotaResponse> {
        account::v1_get_send_quota(self, s).await
    }
    async fn get_send_statistics(&self, s: &Scope) -> R<v1::GetSendStatisticsResponse> {
        account::v1_get_send_statistics(self, s).await
    }
    async fn get_account_sending_enabled(
        &self,
        s: &Scope,
    ) -> R<v1::GetAccountSendingEnabledResponse> {
        account::v1_get_account_sending_enabled(self, s).await
    }
    async fn update_account_sending_enabled(
        &self,
        s: &Scope,
        i: v1::UpdateAccountSendingEnabledRequest,
    ) -> R<()> {
        account::v1_update_account_sending_enabled(self, s, i).await
    }
}

impl v2::SesV2 for Api {
    type Caller = Scope;

    // identities
    async fn create_email_identity(
        &self,
        s: &Scope,
        i: v2::CreateEmailIdentityRequest,
    ) -> R<v2::CreateEmailIdentityResponse> {
        identities::v2_create_email_identity(self, s, i).await
    }
    async fn get_email_identity(
        &self,
        s: &Scope,
        i: v2::GetEmailIdentityRequest,
    ) -> R<v2::GetEmailIdentityResponse> {
        identities::v2_get_email_identity(self, s, i).await
    }
    async fn delete_email_identity(
        &self,
        s: &Scope,
        i: v2::DeleteEmailIdentityRequest,
    ) -> R<v2::DeleteEmailIdentityResponse> {
        identities::v2_delete_email_identity(self, s, i).await
    }
    async fn list_email_identities(
        &self,
        s: &Scope,
        i: v2::ListEmailIdentitiesRequest,
    ) -> R<v2::ListEmailIdentitiesResponse> {
        identities::v2_list_email_identities(self, s, i).await
    }
    async fn put_email_identity_mail_from_attributes(
        &self,
        s: &Scope,
        i: v2::PutEmailIdentityMailFromAttributesRequest,
    ) -> R<v2::PutEmailIdentityMailFromAttributesResponse> {
        identities::v2_put_email_identity_mail_from_attributes(self, s, i).await
    }
    async fn put_email_identity_dkim_attributes(
        &self,
        s: &Scope,
        i: v2::PutEmailIdentityDkimAttributesRequest,
    ) -> R<v2::PutEmailIdentityDkimAttributesResponse> {
        identities::v2_put_email_identity_dkim_attributes(self, s, i).await
    }
    async fn put_email_identity_dkim_signing_attributes(
        &self,
        s: &Scope,
        i: v2::PutEmailIdentityDkimSigningAttributesRequest,
    ) -> R<v2::PutEmailIdentityDkimSigningAttributesResponse> {
        identities::v2_put_email_identity_dkim_signing_attributes(self, s, i).await
    }
    async fn tag_resource(
        &self,
        s: &Scope,
        i: v2::TagResourceRequest,
    ) -> R<v2::TagResourceResponse> {
        identities::v2_tag_resource(self, s, i).await
    }
    async fn untag_resource(
        &self,
        s: &Scope,
        i: v2::UntagResourceRequest,
    ) -> R<v2::UntagResourceResponse> {
        identities::v2_untag_resource(self, s, i).await
    }
    async fn list_tags_for_resource(
        &self,
        s: &Scope,
        i: v2::ListTagsForResourceRequest,
    ) -> R<v2::ListTagsForResourceResponse> {
        identities::v2_list_tags_for_resource(self, s, i).await
    }

    // sending
    async fn send_email(&self, s: &Scope, i: v2::SendEmailRequest) -> R<v2::SendEmailResponse> {
        sending::v2_send_email(self, s, i).await
    }
    async fn send_bulk_email(
        &self,
        s: &Scope,
        i: v2::SendBulkEmailRequest,
    ) -> R<v2::SendBulkEmailResponse> {
        sending::v2_send_bulk_email(self, s, i).await
    }

    // templates
    async fn create_email_template(
        &self,
        s: &Scope,
        i: v2::CreateEmailTemplateRequest,
    ) -> R<v2::CreateEmailTemplateResponse> {
        templates::v2_create_email_template(self, s, i).await
    }
    async fn get_email_template(
        &self,
        s: &Scope,
        i: v2::GetEmailTemplateRequest,
    ) -> R<v2::GetEmailTemplateResponse> {
        templates::v2_get_email_template(self, s, i).await
    }
    async fn update_email_template(
        &self,
        s: &Scope,
        i: v2::UpdateEmailTemplateRequest,
    ) -> R<v2::UpdateEmailTemplateResponse> {
        templates::v2_update_email_template(self, s, i).await
    }
    async fn delete_email_template(
        &self,
        s: &Scope,
        i: v2::DeleteEmailTemplateRequest,
    ) -> R<v2::DeleteEmailTemplateResponse> {
        templates::v2_delete_email_template(self, s, i).await
    }
    async fn list_email_templates(
        &self,
        s: &Scope,
        i: v2::ListEmailTemplatesRequest,
    ) -> R<v2::ListEmailTemplatesResponse> {
        templates::v2_list_email_templates(self, s, i).await
    }
    async fn test_render_email_template(
        &self,
        s: &Scope,
        i: v2::TestRenderEmailTemplateRequest,
    ) -> R<v2::TestRenderEmailTemplateResponse> {
        templates::v2_test_render_email_template(self, s, i).await
    }

    // custom_verification
    async fn create_custom_verification_email_template(
        &self,
        s: &Scope,
        i: v2::CreateCustomVerificationEmailTemplateRequest,
    ) -> R<v2::CreateCustomVerificationEmailTemplateResponse> {
        custom_verification::v2_create_custom_verification_email_template(self, s, i).await
    }
    async fn update_custom_verification_email_template(
        &self,
        s: &Scope,
        i: v2::UpdateCustomVerificationEmailTemplateRequest,
    ) -> R<v2::UpdateCustomVerificationEmailTemplateResponse> {
        custom_verification::v2_update_custom_verification_email_template(self, s, i).await
    }
    async fn get_custom_verification_email_template(
        &self,
        s: &Scope,
        i: v2::GetCustomVerificationEmailTemplateRequest,
    ) -> R<v2::GetCustomVerificationEmailTemplateResponse> {
        custom_verification::v2_get_custom_verification_email_template(self, s, i).await
    }
    async fn delete_custom_verification_email_template(
        &self,
        s: &Scope,
        i: v2::DeleteCustomVerificationEmailTemplateRequest,
    ) -> R<v2::DeleteCustomVerificationEmailTemplateResponse> {
        custom_verification::v2_delete_custom_verification_email_template(self, s, i).await
    }
    async fn list_custom_verification_email_templates(
        &self,
        s: &Scope,
        i: v2::ListCustomVerificationEmailTemplatesRequest,
    ) -> R<v2::ListCustomVerificationEmailTemplatesResponse> {
        custom_verification::v2_list_custom_verification_email_templates(self, s, i).await
    }
    async fn send_custom_verification_email(
        &self,
        s: &Scope,
        i: v2::SendCustomVerificationEmailRequest,
    ) -> R<v2::SendCustomVerificationEmailResponse> {
        custom_verification::v2_send_custom_verification_email(self, s, i).await
    }

    // account
    async fn get_account(&self, s: &Scope, i: v2::GetAccountRequest) -> R<v2::GetAccountResponse> {
        account::v2_get_account(self, s, i).await
    }
    async fn put_account_details(
        &self,
        s: &Scope,
        i: v2::PutAccountDetailsRequest,
    ) -> R<v2::PutAccountDetailsResponse> {
        account::v2_put_account_details(self, s, i).await
    }
    async fn put_account_sending_attributes(
        &self,
        s: &Scope,
        i: v2::PutAccountSendingAttributesRequest,
    ) -> R<v2::PutAccountSendingAttributesResponse> {
        account::v2_put_account_sending_attributes(self, s, i).await
    }
}

/// No SNS operation is served yet: every one answers NotImplemented.
impl sns::Sns for Api {
    type Caller = Scope;
}
