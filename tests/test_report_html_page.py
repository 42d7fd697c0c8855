"""summary.md as an HTML page for the report (archbench.report.html): markdown rendered (tables
included, raw HTML off), linked figures embedded, at most MAX_FIGURES per link."""

from matplotlib import pyplot as plt

from archbench.report import figures, html


def test_markdown_page_embeds_linked_figures_and_renders_tables(tmp_path):
    fig, _ = plt.subplots(figsize=(1, 1))
    figures.save(fig, str(tmp_path / "plots" / "a.png"), svg=False)
    for i in range(html.MAX_FIGURES + 2):
        (tmp_path / "plots" / "curves").mkdir(exist_ok=True)
        (tmp_path / "plots" / "curves" / f"p{i:02d}.png").write_bytes((tmp_path / "plots" / "a.png").read_bytes())
    md = tmp_path / "summary.md"
    md.write_text(
        "# Verdict\n\n**RetNet** wins <script>x</script>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "- [a](plots/a.png)\n- [curves](plots/curves)\n- [gone](plots/none.png)\n"
    )
    html.write_markdown_page(str(md), str(tmp_path / "summary.html"))
    page = (tmp_path / "summary.html").read_text()
    assert "<strong>RetNet</strong> wins &lt;script&gt;" in page and "<td>1</td>" in page
    assert page.count('<img src="data:image/png;base64,') == 1 + html.MAX_FIGURES
    assert "(2 more in <code>plots/curves</code>)" in page and "<figcaption>curves: p00</figcaption>" in page
    assert '<a href="plots/none.png">gone</a>' in page  # a missing file stays a link


def test_tables_page_has_one_section_per_table(tmp_path):
    (tmp_path / "c.csv").write_text("arch,test_loss\nretnet,4.123456789\n")
    (tmp_path / "empty.csv").write_text("")
    html.write_tables_page(
        {"Comparison": str(tmp_path / "c.csv"), "Runs": str(tmp_path / "empty.csv")}, str(tmp_path / "t.html")
    )
    page = (tmp_path / "t.html").read_text()
    assert "<h2>Comparison</h2>" in page and "<td>4.12346</td>" in page and "<h2>Runs</h2>" in page
    assert "(no rows)" in page
