"""Configuration sets through boto3 and the AWS CLI, in both APIs: their
lifecycle, sending through them, pausing them, and the options Sesame does
not carry out yet refused by name."""
import json

import botocore.exceptions
import pytest

from helpers import error as err


@pytest.fixture
def prod(make_server):
    """Production access and auto-verified identities: only the sets matter."""
    return make_server(["--dev", "--auto-verify", "--no-sandbox"])


def v2_send(sesv2, cs=None):
    args = dict(
        FromEmailAddress="sender@example.com",
        Destination={"ToAddresses": ["to@example.org"]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
    )
    if cs:
        args["ConfigurationSetName"] = cs
    return sesv2.send_email(**args)["MessageId"]


def v1_send(ses, cs):
    return ses.send_email(
        Source="sender@example.com",
        Destination={"ToAddresses": ["to@example.org"]},
        Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}},
        ConfigurationSetName=cs,
    )["MessageId"]


def test_the_lifecycle_of_a_configuration_set(prod):
    sesv2, ses = prod.client("sesv2"), prod.client("ses")
    sesv2.create_email_identity(EmailIdentity="example.com")

    sesv2.create_configuration_set(ConfigurationSetName="marketing", Tags=[{"Key": "team", "Value": "a"}],
                                   DeliveryOptions={"TlsPolicy": "OPTIONAL"})
    got = sesv2.get_configuration_set(ConfigurationSetName="marketing")
    assert got["ConfigurationSetName"] == "marketing"
    assert got["SendingOptions"] == {"SendingEnabled": True}
    assert got["DeliveryOptions"]["TlsPolicy"] == "OPTIONAL"
    assert got["Tags"] == [{"Key": "team", "Value": "a"}]
    ses.create_configuration_set(ConfigurationSet={"Name": "transactional"})
    assert sesv2.list_configuration_sets()["ConfigurationSets"] == ["marketing", "transactional"]
    assert [c["Name"] for c in ses.list_configuration_sets()["ConfigurationSets"]] == ["marketing", "transactional"]
    described = ses.describe_configuration_set(ConfigurationSetName="marketing",
                                               ConfigurationSetAttributeNames=["reputationOptions", "deliveryOptions"])
    assert described["ConfigurationSet"] == {"Name": "marketing"}
    assert described["ReputationOptions"]["SendingEnabled"] is True
    assert described["DeliveryOptions"] == {"TlsPolicy": "Optional"}

    # A send through a set is accepted; a paused set refuses it, in each API's words.
    assert v2_send(sesv2, "marketing")
    assert v1_send(ses, "marketing")
    sesv2.put_configuration_set_sending_options(ConfigurationSetName="marketing", SendingEnabled=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        v2_send(sesv2, "marketing")
    assert err(e) == ("SendingPausedException", "Sending is paused for the configuration set <marketing>.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        v1_send(ses, "marketing")
    assert err(e)[0] == "ConfigurationSetSendingPausedException"
    ses.update_configuration_set_sending_enabled(ConfigurationSetName="marketing", Enabled=True)
    assert v2_send(sesv2, "marketing")

    # Names are SES's; a name is one set; a deleted set is gone for sends too.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_configuration_set(ConfigurationSet={"Name": "marketing"})
    assert err(e)[0] == "ConfigurationSetAlreadyExists"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.create_configuration_set(ConfigurationSetName="marketing")
    assert err(e)[0] == "AlreadyExistsException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.create_configuration_set(ConfigurationSet={"Name": "has space"})
    assert err(e)[0] == "InvalidConfigurationSet"
    sesv2.delete_configuration_set(ConfigurationSetName="marketing")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        v2_send(sesv2, "marketing")
    assert err(e) == ("NotFoundException", "Configuration set <marketing> does not exist.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        v1_send(ses, "marketing")
    assert err(e)[0] == "ConfigurationSetDoesNotExist"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.delete_configuration_set(ConfigurationSetName="marketing")
    assert err(e)[0] == "ConfigurationSetDoesNotExist"
    # An identity's default set must exist; none is made otherwise.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.create_email_identity(EmailIdentity="other.example", ConfigurationSetName="marketing")
    assert err(e)[0] == "NotFoundException"
    assert "other.example" not in ses.list_identities()["Identities"]
    sesv2.create_email_identity(EmailIdentity="other.example", ConfigurationSetName="transactional")
    assert sesv2.get_email_identity(EmailIdentity="other.example")["ConfigurationSetName"] == "transactional"
    sesv2.put_email_identity_configuration_set_attributes(EmailIdentity="other.example")
    assert "ConfigurationSetName" not in sesv2.get_email_identity(EmailIdentity="other.example")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_email_identity_configuration_set_attributes(EmailIdentity="other.example", ConfigurationSetName="nope")
    assert err(e)[0] == "NotFoundException"
    # Regions are apart.
    assert prod.client("sesv2", region="eu-west-1").list_configuration_sets()["ConfigurationSets"] == []


def test_options_sesame_cannot_carry_out_are_refused_by_name(prod):
    sesv2, ses = prod.client("sesv2"), prod.client("ses")
    refused = [
        dict(DeliveryOptions={"SendingPoolName": "dedicated"}),
        dict(VdmOptions={"GuardianOptions": {"OptimizedSharedDelivery": "ENABLED"}}),
    ]
    for options in refused:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sesv2.create_configuration_set(ConfigurationSetName="s", **options)
        code, message = err(e)
        assert code == "NotImplemented" and "configuration set option" in message, (options, message)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    # Nothing was created by a refused call.
    assert sesv2.list_configuration_sets()["ConfigurationSets"] == []
    ses.create_configuration_set(ConfigurationSet={"Name": "s"})
    # TlsPolicy and MaxDeliverySeconds are carried out (test_delivery.py).
    ses.put_configuration_set_delivery_options(ConfigurationSetName="s", DeliveryOptions={"TlsPolicy": "Require"})
    described = ses.describe_configuration_set(ConfigurationSetName="s", ConfigurationSetAttributeNames=["deliveryOptions"])
    assert described["DeliveryOptions"] == {"TlsPolicy": "Require"}
    sesv2.put_configuration_set_delivery_options(ConfigurationSetName="s", TlsPolicy="OPTIONAL", MaxDeliverySeconds=600)
    got = sesv2.get_configuration_set(ConfigurationSetName="s")["DeliveryOptions"]
    assert got == {"TlsPolicy": "OPTIONAL", "MaxDeliverySeconds": 600}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.put_configuration_set_delivery_options(ConfigurationSetName="s", MaxDeliverySeconds=60000)
    assert err(e)[0] == "BadRequestException", "above the model's 50,400"
    # Reputation metrics are carried out (test_feedback.py).
    ses.update_configuration_set_reputation_metrics_enabled(ConfigurationSetName="s", Enabled=True)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ses.update_configuration_set_reputation_metrics_enabled(ConfigurationSetName="nope", Enabled=True)
    assert err(e)[0] == "ConfigurationSetDoesNotExist"
    # An SNS destination must be a topic of the caller's; destinations Sesame
    # cannot serve yet name themselves (test_feedback.py has the rest).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.create_configuration_set_event_destination(
            ConfigurationSetName="s", EventDestinationName="d",
            EventDestination={"MatchingEventTypes": ["BOUNCE"], "SnsDestination": {"TopicArn": "arn:aws:sns:us-east-1:000000000000:t"}})
    assert err(e) == ("BadRequestException", "SNS topic <arn:aws:sns:us-east-1:000000000000:t> not found.")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.create_configuration_set_event_destination(
            ConfigurationSetName="s", EventDestinationName="d",
            EventDestination={"MatchingEventTypes": ["BOUNCE"],
                              "EventBridgeDestination": {"EventBusArn": "arn:aws:events:us-east-1:111111111111:event-bus/default"}})
    assert err(e)[0] == "NotImplemented" and "[feedback.eventbridge]" in err(e)[1], "an unmapped bus names the setting"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sesv2.create_configuration_set_event_destination(
            ConfigurationSetName="s", EventDestinationName="d",
            EventDestination={"MatchingEventTypes": ["BOUNCE"], "PinpointDestination": {"ApplicationArn": "arn:aws:mobiletargeting:us-east-1:111111111111:apps/a"}})
    assert err(e)[0] == "NotImplemented" and "PinpointDestination" in err(e)[1]
    assert sesv2.get_configuration_set_event_destinations(ConfigurationSetName="s")["EventDestinations"] == []


def test_the_aws_cli_drives_configuration_sets(prod):
    prod.cli("sesv2", "create-configuration-set", "--configuration-set-name", "cli-set")
    listed = json.loads(prod.cli("ses", "list-configuration-sets").stdout)
    assert [c["Name"] for c in listed["ConfigurationSets"]] == ["cli-set"]
    prod.cli("sesv2", "put-configuration-set-sending-options", "--configuration-set-name", "cli-set", "--no-sending-enabled")
    got = json.loads(prod.cli("sesv2", "get-configuration-set", "--configuration-set-name", "cli-set").stdout)
    assert got["SendingOptions"] == {"SendingEnabled": False}
    prod.cli("ses", "delete-configuration-set", "--configuration-set-name", "cli-set")
    assert json.loads(prod.cli("sesv2", "list-configuration-sets").stdout)["ConfigurationSets"] == []


def test_a_send_naming_no_set_goes_through_its_identitys_default(prod):
    """The most specific verified identity's default set applies: the
    address's over its domain's."""
    sesv2 = prod.client("sesv2")
    for name in ("domain-set", "address-set"):
        sesv2.create_configuration_set(ConfigurationSetName=name)
    sesv2.create_email_identity(EmailIdentity="example.com", ConfigurationSetName="domain-set")
    assert v2_send(sesv2)
    sesv2.put_configuration_set_sending_options(ConfigurationSetName="domain-set", SendingEnabled=False)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        v2_send(sesv2)
    assert err(e) == ("SendingPausedException", "Sending is paused for the configuration set <domain-set>.")
    # The address's own default is more specific than the domain's.
    sesv2.create_email_identity(EmailIdentity="sender@example.com", ConfigurationSetName="address-set")
    assert v2_send(sesv2)
    # A set named in the send wins over the defaults.
    sesv2.put_configuration_set_sending_options(ConfigurationSetName="address-set", SendingEnabled=False)
    sesv2.put_configuration_set_sending_options(ConfigurationSetName="domain-set", SendingEnabled=True)
    assert v2_send(sesv2, "domain-set")
    with pytest.raises(botocore.exceptions.ClientError):
        v2_send(sesv2)
