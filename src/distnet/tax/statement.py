"""The year-end statement as a file: XLSX (numbers, two decimals) and PDF readable in Chinese.

The PDF uses reportlab's built-in CJK font ``STSong-Light`` (Adobe-GB1, Unicode encoding): the
text is stored as Unicode, so any reader extracts and searches it, and reportlab needs no font
file, so nothing is downloaded on a fresh machine."""

from __future__ import annotations

import io
from decimal import Decimal

from distnet.tax.schemas import TaxStatement

CJK_FONT = "STSong-Light"
TITLE = "个人所得税 劳务报酬所得 扣缴明细（年度对账单）"
HEADERS = ["月份 month", "笔数 payments", "应发 gross", "代扣个税 tax", "实发 net"]


def _money(text: str) -> float:
    return float(Decimal(text))


def xlsx_bytes(st: TaxStatement) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False})
    bold = wb.add_format({"bold": True})
    money = wb.add_format({"num_format": "#,##0.00"})
    money_bold = wb.add_format({"num_format": "#,##0.00", "bold": True})
    ws = wb.add_worksheet(f"{st.year}")
    ws.write_string(0, 0, TITLE, bold)
    info = [
        ("年度 year", str(st.year)),
        ("扣缴义务人 payer", st.payer),
        ("纳税人 payee", st.payee_name or ""),
        ("身份证号 resident ID", st.resident_id or ""),
        ("编号 code", st.distributor_code),
        ("币种 currency", st.currency),
    ]
    for r, (label, value) in enumerate(info, start=1):
        ws.write_string(r, 0, label, bold)
        ws.write_string(r, 1, value)
    top = len(info) + 2
    for c, h in enumerate(HEADERS):
        ws.write_string(top, c, h, bold)
    for r, m in enumerate(st.months, start=top + 1):
        ws.write_string(r, 0, m.month)
        ws.write_number(r, 1, m.payments)
        for c, value in enumerate((m.gross, m.tax, m.net), start=2):
            ws.write_number(r, c, _money(value), money)
    r = top + 1 + len(st.months)
    ws.write_string(r, 0, "合计 total", bold)
    ws.write_number(r, 1, sum(m.payments for m in st.months))
    for c, value in enumerate((st.gross, st.tax, st.net), start=2):
        ws.write_number(r, c, _money(value), money_bold)
    ws.set_column(0, 0, 22)
    ws.set_column(1, 4, 16)
    wb.close()
    return buf.getvalue()


def pdf_bytes(st: TaxStatement) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    title = ParagraphStyle("title", fontName=CJK_FONT, fontSize=15, leading=20)
    body = ParagraphStyle("body", fontName=CJK_FONT, fontSize=10, leading=15)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        title=f"{st.year} tax statement {st.distributor_code}",
        author=st.payer,
    )
    rows = [HEADERS] + [[m.month, str(m.payments), m.gross, m.tax, m.net] for m in st.months]
    rows.append(["合计 total", str(sum(m.payments for m in st.months)), st.gross, st.tax, st.net])
    table = Table(rows, colWidths=[34 * mm, 26 * mm, 36 * mm, 36 * mm, 36 * mm])
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), CJK_FONT),
                ("FONTSIZE", (0, 0), (-1, -1), 9),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                ("BACKGROUND", (0, -1), (-1, -1), colors.whitesmoke),
            ]
        )
    )
    story = [
        Paragraph(TITLE, title),
        Spacer(1, 4 * mm),
        Paragraph(f"年度 Year: {st.year}　　币种 Currency: {st.currency}", body),
        Paragraph(f"扣缴义务人 Payer: {st.payer}", body),
        Paragraph(
            f"纳税人 Payee: {st.payee_name or '-'}　　身份证号 Resident ID: {st.resident_id or '-'}"
            f"　　编号 Code: {st.distributor_code}",
            body,
        ),
        Spacer(1, 4 * mm),
        table,
        Spacer(1, 4 * mm),
        Paragraph(
            "按月汇总已支付的劳务报酬：应发金额、预扣预缴的个人所得税与实发金额（退票的款项不计入）。"
            " Per month: gross labour remuneration paid, income tax withheld, net paid (returned payments"
            " are not income).",
            body,
        ),
    ]
    doc.build(story)
    return buf.getvalue()
