import { describe, expect, test } from "bun:test";
import { escapeHtml, html, raw } from "./html.ts";

describe("html", () => {
  test.each([
    ["<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"],
    [`" onmouseover="x`, "&quot; onmouseover=&quot;x"],
    ["it's & <b>", "it&#39;s &amp; &lt;b&gt;"],
    ["plain", "plain"],
  ])("escapes %p", (input, out) => {
    expect(escapeHtml(input)).toBe(out);
    expect(html`<td title="${input}">${input}</td>`.value).toBe(`<td title="${out}">${out}</td>`);
  });

  test("nests safe fragments, joins arrays, drops null, undefined and false", () => {
    const items = ["<a>", "b"].map((x) => html`<li>${x}</li>`);
    expect(html`<ul>${items}</ul>${null}${undefined}${false}${0}`.value).toBe(
      "<ul><li>&lt;a&gt;</li><li>b</li></ul>0",
    );
  });

  test("only raw() and html`` pass markup through; a plain string never does", () => {
    expect(html`${raw("<b>")}${"<b>"}`.value).toBe("<b>&lt;b&gt;");
    expect(html`${[["<i>"], raw("<hr>")]}`.value).toBe("&lt;i&gt;<hr>");
  });
});
