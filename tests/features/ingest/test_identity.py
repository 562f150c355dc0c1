"""Identity resolution rules 1-5 of the data contract."""

from __future__ import annotations

import pandas as pd
import pytest

from features.ingest import identity as idn
from tests.features.ingest.conftest import add_rows


def _reason_of(quarantine: pd.DataFrame, id_col: str, value: str) -> str:
    got = quarantine.loc[quarantine[id_col] == value, "_reason"].tolist()
    assert len(got) == 1, (value, quarantine[[id_col, "_reason"]])
    return got[0]


def _values(s: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in s]


def _by_id(clean: pd.DataFrame, id_col: str) -> pd.DataFrame:
    return clean.set_index(id_col)


# rule 1: normalisation ---------------------------------------------------------------

@pytest.mark.parametrize("raw", ["+1 (212) 555-0134", "212.555.0134", "2125550134",
                                 "001 212 555 0134", " 212-555-0134 "])
def test_phone_formats_normalise_to_last_ten_digits(raw):
    assert _values(idn.normalise_phone(pd.Series([raw]))) == ["2125550134"]


def test_phone_digits_parameter_and_empty_values():
    s = pd.Series(["+44 20 7946 0958", "n/a", None])
    assert _values(idn.normalise_phone(s, digits=8)) == ["79460958", None, None]


def test_email_and_app_id_are_trimmed_and_lowercased():
    assert _values(idn.normalise_email(pd.Series([" Ann@Example.COM ", "", None]))) == [
        "ann@example.com", None, None]
    assert _values(idn.normalise_app_id(pd.Series(["  APP-One"]))) == ["app-one"]


def test_identifier_index_marks_shared_identifiers():
    customers = pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"],
        "email": ["a@x.com", "A@X.com ", "c@x.com"],
        "phone": ["212 555 0134", None, "+1 646 555 0100"],
        "app_id": [None, None, None],
    })
    index = idn.build_identifier_index(customers)
    assert index["email"].loc["a@x.com", "n_customers"] == 2
    assert index["email"].loc["a@x.com", "customer_id"] is None
    assert index["phone"].loc["6465550100", "customer_id"] == "C3"
    assert index["app_id"].empty
    res = idn.resolve(pd.Series(["A@x.com", "c@X.com", "zz@x.com", "646 555 0100", "x"]),
                      pd.Series(["email", "email", "email", "phone", "app_id"]), index)
    assert res["status"].tolist() == ["ambiguous", "resolved", "unknown", "resolved", "unknown"]
    assert res["customer_id"].tolist() == [None, "C3", None, "C3", None]
    assert res["n_customers"].tolist() == [2, 1, 0, 1, 0]


def test_email_normalisation_end_to_end(world, ingest):
    # crm has " Ann@Example.COM ", the response " ann@EXAMPLE.com", the complaint ANN@example.com
    _, clean, _ = ingest(world)
    assert _by_id(clean["survey_responses"], "response_id").loc["S1", "customer_id"] == "C1"
    assert _by_id(clean["complaints"], "complaint_id").loc["K1", "customer_id"] == "C1"
    assert _by_id(clean["complaints"], "complaint_id").loc["K3", "customer_id"] == "C4"


def test_phone_formats_match_end_to_end(world, fmt, ingest):
    add_rows(world, "complaints", [
        ("K10", "2024-04-05T10:00:00", "phone", "+1 (212) 555-0134", "x", 1),
        ("K11", "2024-04-05T10:00:00", "phone", "212.555.0134", "x", 1),
        ("K12", "2024-04-05T10:00:00", "phone", "2125550134", "x", 1),
    ])
    _, clean, quarantine = ingest(world, fmt)
    got = _by_id(clean["complaints"], "complaint_id")
    assert got.loc[["K10", "K11", "K12"], "customer_id"].tolist() == ["C1", "C1", "C1"]
    assert quarantine["complaints"].empty


# rules 2-3: channel, unknown, ambiguous ---------------------------------------------------

def test_unknown_identifiers_are_quarantined(world, ingest):
    add_rows(world, "survey_responses", [
        ("S10", "support-2024-03", "email", "nobody@example.com", "2024-03-07T09:00:00",
         5, None, None, None),
        ("S11", "support-2024-03", "sms", "+1 999 555 0000", "2024-03-07T09:00:00",
         5, None, None, None),
        ("S12", "support-2024-03", "app", "no-such-app", "2024-03-07T09:00:00",
         5, None, None, None),
        # right identifier, wrong channel: an e-mail address answered via sms
        ("S13", "support-2024-03", "sms", "bob@example.com", "2024-03-07T09:00:00",
         5, None, None, None),
    ])
    add_rows(world, "complaints", [("K20", "2024-04-01T10:00:00", "phone", "999-555-0000", "x", 1)])
    report, _, quarantine = ingest(world)
    q = quarantine["survey_responses"]
    assert _reason_of(q, "response_id", "S10") == "respondent: unknown email"
    assert _reason_of(q, "response_id", "S11") == "respondent: unknown phone"
    assert _reason_of(q, "response_id", "S12") == "respondent: unknown app_id"
    assert _reason_of(q, "response_id", "S13") == "respondent: unknown phone"
    assert _reason_of(quarantine["complaints"], "complaint_id", "K20") == "contact: unknown phone"
    assert report.tables["survey_responses"].reasons["respondent: unknown phone"] == 2


def test_shared_phone_is_ambiguous_never_guessed(world, ingest):
    # C3 "(646) 555-0100" and C4 "646-555-0100" share a household phone
    add_rows(world, "survey_responses", [
        ("S20", "relationship-2024-06", "sms", "6465550100", "2024-06-02T09:00:00",
         5, None, None, None),
    ])
    add_rows(world, "complaints", [("K30", "2024-04-01T10:00:00", "phone", "+1 646.555.0100",
                                    "x", 1)])
    report, clean, quarantine = ingest(world)
    expected = "ambiguous phone (shared by 2 customers)"
    q = quarantine["survey_responses"]
    assert _reason_of(q, "response_id", "S20") == "respondent: " + expected
    assert _reason_of(quarantine["complaints"], "complaint_id", "K30") == "contact: " + expected
    assert "S20" not in set(clean["survey_responses"]["response_id"])
    assert report.tables["complaints"].reasons == {"contact: ambiguous phone": 1}


def test_quarantined_customers_do_not_make_identifiers_ambiguous(world, ingest):
    # a bad CRM row (unknown segment) with Ann's e-mail: quarantined, so not a second owner
    add_rows(world, "crm_customers", [("C9", "2023-01-01", "gold", "n", "R1", "ann@example.com",
                                       None, None, "active", None)])
    report, clean, _ = ingest(world)
    assert report.tables["crm_customers"].rows_quarantined == 1
    assert _by_id(clean["survey_responses"], "response_id").loc["S1", "customer_id"] == "C1"


# rule 4: invitation link ----------------------------------------------------------------

def test_response_links_to_latest_invitation_sent_at_or_before(world, ingest):
    # C1 was invited to relationship-2024-06 on 06-01 (I1) and again on 06-10 (I2)
    add_rows(world, "survey_responses", [
        ("S30", "relationship-2024-06", "app", "app-one", "2024-06-12T09:00:00",
         8, None, None, None),
        ("S31", "purchase-2024-02", "email", "dee@example.com ", "2024-02-12T08:00:00",
         8, None, None, None),  # exactly at sent_at of I5, but I5 already answered by S4
    ])
    add_rows(world, "survey_invitations", [
        ("I20", "C2", "relationship-2024-12", "relationship", "email", "2024-12-01T08:00:00", None),
        ("I21", "C2", "relationship-2024-12", "relationship", "email", "2024-12-10T08:00:00", None),
    ])
    add_rows(world, "survey_responses", [
        # a day before I21 (closer to it than to I20): still linked to I20, the one sent before
        ("S70", "relationship-2024-12", "email", "bob@example.com", "2024-12-09T08:00:00",
         8, None, None, None),
        ("S71", "relationship-2024-12", "email", "bob@example.com", "2024-12-10T09:00:00",
         8, None, None, None),
    ])
    _, clean, quarantine = ingest(world)
    got = _by_id(clean["survey_responses"], "response_id")
    assert got.loc[["S70", "S71"], "invitation_id"].tolist() == ["I20", "I21"]
    assert got.loc["S1", "invitation_id"] == "I1"  # 06-05: before the reminder
    assert got.loc["S30", "invitation_id"] == "I2"  # 06-12: the latest one
    # S31 is at sent_at exactly: linked to I5, and earlier than S4 -> S31 kept, S4 duplicate
    assert got.loc["S31", "invitation_id"] == "I5"
    assert _reason_of(quarantine["survey_responses"], "response_id", "S4") == (
        "response_id: duplicate response (kept response_id S31)")


def test_response_without_invitation_is_quarantined(world, ingest):
    add_rows(world, "survey_responses", [
        # C2 was never invited to relationship-2024-06
        ("S40", "relationship-2024-06", "email", "bob@example.com", "2024-06-05T09:00:00",
         5, None, None, None),
        # C4 answered purchase-2024-02 before the invitation was sent
        ("S41", "purchase-2024-02", "email", "dee@example.com", "2024-02-12T07:59:59",
         5, None, None, None),
    ])
    report, clean, quarantine = ingest(world)
    q = quarantine["survey_responses"]
    reason = "survey_id: no invitation to this customer sent at or before responded_at"
    assert _reason_of(q, "response_id", "S40") == reason
    assert _reason_of(q, "response_id", "S41") == reason
    assert set(clean["survey_responses"]["response_id"]) == {"S1", "S2", "S3", "S4"}
    # resolved (rule 3) even though not linked (rule 4): counts as an identity match
    assert report.identity_match_rate == 1.0


# rule 5: one response per customer and invitation ------------------------------------------

def test_answer_on_two_channels_keeps_the_earliest(world, fmt, ingest):
    add_rows(world, "survey_responses", [
        # Ann answers I1 again on the app, one hour *before* her e-mail answer S1
        ("S50", "relationship-2024-06", "app", "APP-ONE", "2024-06-05T08:00:00",
         6, None, None, None),
        # and a third time by sms, later
        ("S51", "relationship-2024-06", "sms", "212.555.0134", "2024-06-06T08:00:00",
         7, None, None, None),
    ])
    report, clean, quarantine = ingest(world, fmt)
    q = quarantine["survey_responses"]
    assert _reason_of(q, "response_id", "S1") == (
        "response_id: duplicate response (kept response_id S50)")
    assert _reason_of(q, "response_id", "S51") == (
        "response_id: duplicate response (kept response_id S50)")
    kept = _by_id(clean["survey_responses"], "response_id")
    assert kept.loc["S50", ["customer_id", "invitation_id"]].tolist() == ["C1", "I1"]
    assert report.tables["survey_responses"].reasons == {"response_id: duplicate response": 2}


def test_simultaneous_answers_keep_the_lowest_response_id(world, ingest):
    add_rows(world, "survey_responses", [
        ("S0", "support-2024-03", "email", "bob@example.com", "2024-03-07T09:00:00",
         4, None, None, None),  # same instant as S2 (sms), lower id
    ])
    _, clean, quarantine = ingest(world)
    assert "S0" in set(clean["survey_responses"]["response_id"])
    assert _reason_of(quarantine["survey_responses"], "response_id", "S2") == (
        "response_id: duplicate response (kept response_id S0)")


def test_identity_match_rate_by_kind(world, ingest):
    add_rows(world, "survey_responses", [
        ("S60", "support-2024-03", "sms", "6465550100", "2024-03-07T09:00:00", 5, None, None,
         None),  # ambiguous phone
        ("S61", "support-2024-03", "app", "nope", "2024-03-07T09:00:00", 5, None, None,
         None),  # unknown app id
        ("S62", "support-2024-03", "app", "app-one", "2024-03-07T09:00:00", 99, None, None,
         None),  # fails row validation: not counted at all
    ])
    report, _, _ = ingest(world)
    # responses: 2 email + 2 sms + 2 app (S62 excluded); complaints: 2 email + 1 phone
    assert report.identity.attempted == {"email": 4, "phone": 3, "app_id": 2}
    assert report.identity.resolved == {"email": 4, "phone": 2, "app_id": 1}
    assert report.identity_match_rate == pytest.approx(7 / 9)
    assert report.identity_match_rate_by_kind == pytest.approx(
        {"email": 1.0, "phone": 2 / 3, "app_id": 0.5})


def test_no_invitations_at_all_quarantines_every_resolved_response(world, ingest):
    world["survey_invitations"] = world["survey_invitations"].iloc[0:0]
    report, clean, quarantine = ingest(world)
    assert clean["survey_responses"].empty
    assert report.tables["survey_responses"].reasons == {
        "survey_id: no invitation to this customer sent at or before responded_at": 4}
    assert list(clean["survey_responses"].columns)[-2:] == ["customer_id", "invitation_id"]


def test_no_response_resolves(world, ingest):
    world["crm_customers"][["email", "phone", "app_id"]] = None
    report, clean, _ = ingest(world)
    assert clean["survey_responses"].empty and clean["complaints"].empty
    assert report.identity_match_rate == 0.0
    assert report.tables["survey_responses"].rows_quarantined == 4


def test_link_invitations_unit_ties_and_boundaries():
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    hour = pd.Timedelta("1h")
    responses = pd.DataFrame({
        "customer_id": ["C1", "C1", "C1", "C2"],
        "survey_id": ["s", "s", "s", "s"],
        "responded_at": [t0 + hour, t0, t0 - hour, t0 + hour],
    })
    invitations = pd.DataFrame({
        "invitation_id": ["I9", "I2", "I5"],
        "customer_id": ["C1"] * 3,
        "survey_id": ["s"] * 3,
        "sent_at": [t0, t0, t0],
    })
    # same sent_at: highest invitation_id; at sent_at exactly: linked; before / other: None
    got = idn.link_invitations(responses, invitations).tolist()
    assert got == ["I9", "I9", None, None]
