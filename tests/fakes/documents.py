"""Real documents generated for tests and benchmarks: PDF (fpdf2), DOCX (python-docx), PPTX,
XLSX. Each page or paragraph carries a known, numbered sentence so extraction can be checked."""

from __future__ import annotations

import io


def sentence(i: int) -> str:
    return f"Sentence number {i} says the river Lumen flows north past marker {i * 7}."


def pdf(pages: int = 3, lines: int = 5, password: str | None = None) -> bytes:
    from fpdf import FPDF

    doc = FPDF()
    doc.set_font("Helvetica", size=11)
    if password is not None:
        doc.set_encryption(owner_password="owner-" + password, user_password=password)
    n = 0
    for _ in range(pages):
        doc.add_page()
        for _ in range(lines):
            doc.cell(0, 8, sentence(n), new_x="LMARGIN", new_y="NEXT")
            n += 1
    return bytes(doc.output())


def docx(paragraphs: int = 5, table: bool = True) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading("Quarterly river report", level=1)
    for i in range(paragraphs):
        document.add_paragraph(sentence(i))
    if table:
        t = document.add_table(rows=2, cols=2)
        t.cell(0, 0).text, t.cell(0, 1).text = "station", "flow"
        t.cell(1, 0).text, t.cell(1, 1).text = "Lumen-North", "4200"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx(slides: int = 2) -> bytes:
    from pptx import Presentation

    prs = Presentation()
    for i in range(slides):
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = f"Slide title {i}"
        slide.placeholders[1].text = sentence(i)
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def xlsx(rows: int = 3) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Flows"
    ws.append(["station", "flow", "note"])
    for i in range(rows):
        ws.append([f"S{i}", i * 100, sentence(i)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
