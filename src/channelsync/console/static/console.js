// channelsync console: progressive enhancement only. Without this file every page works:
// header links sort, the filter form submits, Test connection posts and redirects back.
"use strict";

function replaceFrom(html, ids) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  for (const id of ids) {
    const fresh = doc.getElementById(id);
    const old = document.getElementById(id);
    if (fresh && old) old.replaceWith(fresh);
  }
}

// The channel list: typing in the search or a column filter asks the server for the same
// page with the new query (one filtering rule, the server's) and swaps the results in.
function enhanceFilters() {
  const form = document.getElementById("filters");
  if (!form) return;
  let timer = null;
  let asked = 0;
  const refresh = () => {
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) params.set(key, value);
    const url = form.action + "?" + params.toString();
    const mine = ++asked;
    fetch(url, { credentials: "same-origin" })
      .then((r) => r.text())
      .then((html) => {
        if (mine !== asked) return; // an older answer arriving late
        replaceFrom(html, ["results"]);
        history.replaceState(null, "", url);
      });
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    refresh();
  });
}

// Test connection: post the same form, then show the page the redirect leads to in place.
function enhanceTest() {
  const form = document.getElementById("test-form");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = document.getElementById("test-button");
    const busy = document.getElementById("test-busy");
    button.disabled = true;
    busy.hidden = false;
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    })
      .then((r) => r.text())
      .then((html) => {
        replaceFrom(html, ["latest", "checks", "message"]);
        const main = new DOMParser().parseFromString(html, "text/html").getElementById("message");
        if (main) document.getElementById("latest").replaceChildren(main);
      })
      .finally(() => {
        button.disabled = false;
        busy.hidden = true;
        document.getElementById("latest").focus?.();
      });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  enhanceFilters();
  enhanceTest();
});
