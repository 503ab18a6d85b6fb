"""The status page's one stylesheet (served as ``/style.css``): light and dark by ``prefers-color-scheme``,
and below 40 rem each table row stacks into a card, so a phone never scrolls sideways."""

CSS = """\
:root{--bg:#fff;--fg:#1b1b1b;--muted:#555;--line:#ccc;--card:#f4f4f4;--ok:#146c2e;--warn:#8a5300;--bad:#b00020;
--link:#0645ad;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#ececec;--muted:#b0b0b0;--line:#444;--card:#1e1e1e;
--ok:#7bd88f;--warn:#f0b45a;--bad:#ff8a80;--link:#8ab4f8}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
header,main{max-width:72rem;margin:0 auto;padding:0 1rem}
h1{font-size:1.4rem;margin:1rem 0 0}h2{font-size:1.2rem;margin:0 0 .5rem}
a{color:var(--link)}code,pre{font:.9em ui-monospace,Menlo,Consolas,monospace}
.stamp,.mode,.empty{color:var(--muted)}.mode{font-size:.8em;font-weight:normal}
section{background:var(--card);border:1px solid var(--line);border-radius:.5rem;padding:.75rem 1rem;margin:1rem 0}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0 0 .5rem}
.facts dt{font-weight:600}.facts dd{margin:0}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid var(--line)}
td,dd,.flash{overflow-wrap:break-word}
progress{width:6rem;vertical-align:middle}
form{display:inline;margin:0 .5rem .5rem 0}button{font:inherit;padding:.2rem .6rem}
.flash{border:1px solid var(--line);padding:.5rem;border-radius:.5rem}
ol.timeline{list-style:none;padding:0;border-left:3px solid var(--line);margin:.5rem 0 .5rem .4rem}
ol.timeline li{padding:.2rem 0 .4rem .8rem}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:var(--bg);padding:.5rem;border:1px solid var(--line)}
@media (max-width:40rem){
.facts{grid-template-columns:1fr}.facts dd{margin-bottom:.3rem}
table,thead,tbody,tr,td{display:block;width:100%}thead{position:absolute;left:-9999px}
caption{display:block}tr{border-bottom:1px solid var(--line);padding:.3rem 0}td{border:0;padding:.1rem 0}
td,dd,.flash,pre{overflow-wrap:anywhere}
td::before{content:attr(data-label) ": ";font-weight:600}}
"""
