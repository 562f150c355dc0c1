"""Small broken exports: the base world (tests.features.ingest.conftest) with one fault."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tests.features.ingest.conftest import add_rows, base_world, write_world


def csv_world(src: Path, **frames: pd.DataFrame) -> Path:
    world = base_world()
    world.update(frames)
    return write_world(world, src, "csv")


def parquet_world(src: Path) -> Path:
    return write_world(base_world(), src, "parquet")


def edit_bytes(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data, old
    path.write_bytes(data.replace(old, new, 1))


def with_rows(table: str, rows: list[tuple]) -> dict[str, pd.DataFrame]:
    world = base_world()
    add_rows(world, table, rows)
    return {table: world[table]}


# ---- faults that stop the run -----------------------------------------------------------

def latin1_byte_deep_in_a_csv(src: Path) -> None:
    csv_world(src)
    edit_bytes(src / "survey_responses.csv", b"great", b"gr\xe9at")


def latin1_byte_in_a_header(src: Path) -> None:
    csv_world(src)
    edit_bytes(src / "crm_customers.csv", b"region", b"r\xe9gion")


def corrupt_parquet_body(src: Path) -> None:
    parquet_world(src)
    path = src / "orders.parquet"
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8
    data[4:len(data) - footer] = b"\xff" * (len(data) - footer - 4)
    path.write_bytes(bytes(data))


def truncated_parquet(src: Path) -> None:
    parquet_world(src)
    path = src / "crm_customers.parquet"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def text_named_parquet(src: Path) -> None:
    parquet_world(src)
    (src / "billing_invoices.parquet").write_text("invoice_id,customer_id\nINV1,C1\n")


def empty_crm_file(src: Path) -> None:
    csv_world(src)
    (src / "crm_customers.csv").write_bytes(b"")


def ragged_csv_row(src: Path) -> None:
    csv_world(src)
    with open(src / "support_tickets.csv", "a") as fh:
        fh.write("T9,C1,2024-03-01T09:00:00,,billing,open,phone,EXTRA\n")


def unclosed_quote(src: Path) -> None:
    csv_world(src)
    with open(src / "orders.csv", "a") as fh:
        fh.write('O9,C1,2024-02-10T15:00:00,"99.0,delivered\n')


def missing_customer_id_column(src: Path) -> None:
    csv_world(src, crm_customers=base_world()["crm_customers"].rename(
        columns={"customer_id": "cust_id"}))


def pipe_delimited_crm(src: Path) -> None:
    csv_world(src)
    base_world()["crm_customers"].to_csv(src / "crm_customers.csv", index=False, sep="|")


def no_crm_table(src: Path) -> None:
    csv_world(src)
    (src / "crm_customers.csv").unlink()


def optional_table_without_its_key(src: Path) -> None:
    csv_world(src, orders=base_world()["orders"].drop(columns=["order_id"]))


def crm_without_status_or_churn_date(src: Path) -> None:
    csv_world(src, crm_customers=base_world()["crm_customers"].drop(
        columns=["status", "churn_date"]))


def semicolon_csv_missing_a_column(src: Path) -> None:
    csv_world(src)
    crm = base_world()["crm_customers"].drop(columns=["customer_id"])
    crm.to_csv(src / "crm_customers.csv", index=False, sep=";", encoding="utf-8-sig")


# ---- faults whose rows are quarantined (the run goes on) ------------------------------

def orders_in_2098(src: Path) -> None:
    csv_world(src, **with_rows("orders", [("O9", "C2", "2098-02-10T15:00:00", 10.0,
                                          "delivered")]))


def responses_in_2099(src: Path) -> None:
    csv_world(src, **with_rows("survey_responses", [
        ("S9", "purchase-2024-02", "email", "bob@example.com", "2099-01-01T09:00:00",
         5, None, None, None)]))


def usage_in_2099(src: Path) -> None:
    csv_world(src, **with_rows("product_usage", [("C2", "2099-03-01", 1.0, 2, 3)]))


def signup_in_2098(src: Path) -> None:
    csv_world(src, **with_rows("crm_customers", [
        ("C9", "2098-01-01", "consumer", "north", "R1", None, None, None, "active", None)]))


def orders_after_observed_until(src: Path) -> None:
    world = base_world()
    world["crm_customers"] = world["crm_customers"].assign(observed_until="2024-06-30")
    add_rows(world, "orders", [("O9", "C2", "2024-07-01T00:00:00", 10.0, "delivered"),
                               ("O10", "C2", "2024-06-30T23:00:00", 10.0, "delivered")])
    write_world(world, src, "csv")


def header_only_orders(src: Path) -> None:
    csv_world(src, orders=base_world()["orders"].iloc[0:0])


def semicolon_crm_with_bom(src: Path) -> None:
    csv_world(src)
    base_world()["crm_customers"].to_csv(src / "crm_customers.csv", index=False, sep=";",
                                         encoding="utf-8-sig")


def tab_delimited_orders_with_crlf(src: Path) -> None:
    csv_world(src)
    base_world()["orders"].to_csv(src / "orders.csv", index=False, sep="\t", lineterminator="\r\n")


def bom_comma_invoices(src: Path) -> None:
    csv_world(src)
    base_world()["billing_invoices"].to_csv(src / "billing_invoices.csv", index=False,
                                            encoding="utf-8-sig")


# ---- company exports read through a mapping file --------------------------------------

ROOT = Path(__file__).resolve().parents[2]
TELCO_MAPPING = ROOT / "configs" / "sources" / "ibm_telco.yaml"
TELCO_SAMPLE = ROOT / "tests" / "fixtures" / "ibm_telco_sample"
LOCATION = "Telco_customer_churn_location.csv"
STATUS = "Telco_customer_churn_status.csv"


def telco_export(src: Path) -> Path:
    import shutil

    shutil.copytree(TELCO_SAMPLE, src)
    return src


def cp1252_city(src: Path) -> None:
    """One state (a mapped column) written by a Windows export: 'Califórnia' in cp1252."""
    telco_export(src)
    text = (src / LOCATION).read_text(encoding="utf-8").replace("California", "Califórnia", 1)
    (src / LOCATION).write_bytes(text.encode("cp1252"))


def semicolon_status_with_bom(src: Path) -> None:
    telco_export(src)
    frame = pd.read_csv(src / STATUS, dtype=str, keep_default_na=False)
    frame.to_csv(src / STATUS, index=False, sep=";", encoding="utf-8-sig")


def mapping_with_encoding(path: Path, encoding: str) -> Path:
    """The shipped Telco mapping with ``encoding:`` on the location file."""
    entry = f"{{path: {LOCATION}, key: Customer ID}}"
    text = TELCO_MAPPING.read_text()
    assert entry in text
    path.write_text(text.replace(entry, f"{{path: {LOCATION}, key: Customer ID, "
                                        f"encoding: {encoding}}}"))
    return path
