// One identity flow through the AWS SDK for JavaScript v3 against Sesame.
// Env: SESAME_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. Exits non-zero on failure.
import assert from "node:assert/strict";
import {
  SESv2Client, CreateEmailIdentityCommand, GetEmailIdentityCommand, ListEmailIdentitiesCommand,
  TagResourceCommand, ListTagsForResourceCommand, DeleteEmailIdentityCommand,
} from "@aws-sdk/client-sesv2";
import {
  SESClient, VerifyEmailIdentityCommand, GetIdentityVerificationAttributesCommand,
  VerifyDomainIdentityCommand,
} from "@aws-sdk/client-ses";

const config = {
  region: "us-east-1",
  endpoint: process.env.SESAME_URL,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  },
  maxAttempts: 1,
};
const v2 = new SESv2Client(config);
const v1 = new SESClient(config);
const domain = `js-${Date.now()}.example.com`;
const address = `js+label@${domain}`;

const created = await v2.send(new CreateEmailIdentityCommand({ EmailIdentity: domain }));
assert.equal(created.IdentityType, "DOMAIN");
assert.equal(created.DkimAttributes.Tokens.length, 3);
assert.ok(created.DkimAttributes.LastKeyGenerationTimestamp instanceof Date);

await v2.send(new CreateEmailIdentityCommand({ EmailIdentity: address }));
const got = await v2.send(new GetEmailIdentityCommand({ EmailIdentity: address }));
assert.equal(got.IdentityType, "EMAIL_ADDRESS");
assert.equal(got.VerificationStatus, "PENDING");

const listed = await v2.send(new ListEmailIdentitiesCommand({ PageSize: 1000 }));
const names = listed.EmailIdentities.map((i) => i.IdentityName);
assert.ok(names.includes(domain) && names.includes(address), `listed: ${names}`);

const arn = `arn:aws:ses:us-east-1:111111111111:identity/${domain}`;
await v2.send(new TagResourceCommand({ ResourceArn: arn, Tags: [{ Key: "sdk", Value: "js" }] }));
const tags = await v2.send(new ListTagsForResourceCommand({ ResourceArn: arn }));
assert.deepEqual(tags.Tags, [{ Key: "sdk", Value: "js" }]);

await assert.rejects(
  v2.send(new CreateEmailIdentityCommand({ EmailIdentity: domain })),
  (e) => e.name === "AlreadyExistsException" && e.$metadata.httpStatusCode === 400,
);
await v2.send(new DeleteEmailIdentityCommand({ EmailIdentity: address }));
await assert.rejects(
  v2.send(new GetEmailIdentityCommand({ EmailIdentity: address })),
  (e) => e.name === "NotFoundException" && e.$metadata.httpStatusCode === 404,
);

// v1: the JS SDK signs Query requests with its own header set.
await v1.send(new VerifyEmailIdentityCommand({ EmailAddress: `v1@${domain}` }));
const token = (await v1.send(new VerifyDomainIdentityCommand({ Domain: domain }))).VerificationToken;
const attrs = await v1.send(new GetIdentityVerificationAttributesCommand({ Identities: [`v1@${domain}`, domain] }));
assert.deepEqual(attrs.VerificationAttributes[`v1@${domain}`], { VerificationStatus: "Pending" });
assert.equal(attrs.VerificationAttributes[domain].VerificationToken, token);
await assert.rejects(
  v1.send(new VerifyEmailIdentityCommand({ EmailAddress: "not an address" })),
  (e) => e.name === "InvalidParameterValue",
);

console.log("js identity flow ok");
