// Custom verification email templates through the AWS SDK for JavaScript v3:
// both APIs' shapes (note SuccessRedirectionURL's casing) and error names.
// Env: SESAME_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, SESAME_FROM
// (an address at a verified domain). Exits non-zero on failure.
import assert from "node:assert/strict";
import {
  SESv2Client, CreateCustomVerificationEmailTemplateCommand, GetCustomVerificationEmailTemplateCommand,
  ListCustomVerificationEmailTemplatesCommand, DeleteCustomVerificationEmailTemplateCommand,
} from "@aws-sdk/client-sesv2";
import {
  SESClient, GetCustomVerificationEmailTemplateCommand as V1Get, CreateCustomVerificationEmailTemplateCommand as V1Create,
} from "@aws-sdk/client-ses";

const config = {
  region: "us-east-1",
  endpoint: process.env.SESAME_URL,
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  maxAttempts: 1,
};
const v2 = new SESv2Client(config);
const v1 = new SESClient(config);
const name = `js-${Date.now()}`;
const template = {
  TemplateName: name,
  FromEmailAddress: process.env.SESAME_FROM,
  TemplateSubject: "Please confirm",
  TemplateContent: "<html><body><p>Confirm your address.</p></body></html>",
  SuccessRedirectionURL: "https://app.example/ok",
  FailureRedirectionURL: "https://app.example/failed",
};

await v2.send(new CreateCustomVerificationEmailTemplateCommand(template));
const got = await v2.send(new GetCustomVerificationEmailTemplateCommand({ TemplateName: name }));
assert.equal(got.SuccessRedirectionURL, "https://app.example/ok");
assert.equal(got.TemplateContent, template.TemplateContent);
const v1got = await v1.send(new V1Get({ TemplateName: name }));
assert.equal(v1got.FailureRedirectionURL, "https://app.example/failed");
const listed = await v2.send(new ListCustomVerificationEmailTemplatesCommand({}));
assert.ok(listed.CustomVerificationEmailTemplates.some((t) => t.TemplateName === name));

await assert.rejects(
  v1.send(new V1Create({ ...template, TemplateContent: "<p>x</p><!-- no -->" })),
  (e) => e.name === "CustomVerificationEmailInvalidContentException",
);
await assert.rejects(
  v1.send(new V1Get({ TemplateName: "missing" })),
  (e) => e.name === "CustomVerificationEmailTemplateDoesNotExistException",
);
await v2.send(new DeleteCustomVerificationEmailTemplateCommand({ TemplateName: name }));
await assert.rejects(
  v2.send(new GetCustomVerificationEmailTemplateCommand({ TemplateName: name })),
  (e) => e.name === "NotFoundException" && e.$metadata.httpStatusCode === 404,
);
console.log("js custom verification ok");
