// The console with JavaScript on: greyed-out fields, the properties dialog's tabs, the modal wizard window.
// Every page works without it (the server ignores what doesn't apply; tabs and wizard pages are plain submits).
"use strict";

// Fields that don't apply are disabled, as the EAC greys them out: a <fieldset data-applies-name="<radio group>"
// data-applies-values="<value> ..."> is enabled only while one of those values is chosen in the group.
function refreshApplies(form) {
  for (const fieldset of form.querySelectorAll("fieldset[data-applies-name]")) {
    const chosen = form.querySelector(`input[name="${CSS.escape(fieldset.dataset.appliesName)}"]:checked`);
    const applies = chosen !== null && fieldset.dataset.appliesValues.split(" ").includes(chosen.value);
    fieldset.disabled = !applies;
    if (!applies) {
      for (const details of fieldset.querySelectorAll("details[open]")) details.open = false;
    }
  }
}

function refreshAllApplies(root) {
  if (!root.querySelectorAll) return;  // htmx also announces text it swapped in
  const forms = root instanceof HTMLFormElement ? [root] : root.querySelectorAll("form");
  for (const form of forms) refreshApplies(form);
}

document.addEventListener("change", (event) => {
  if (event.target.form) refreshApplies(event.target.form);
});

// A greyed-out list's Add (a <summary>) doesn't open its dialog.
document.addEventListener("click", (event) => {
  const summary = event.target.closest("summary");
  if (summary && summary.closest("fieldset:disabled")) event.preventDefault();
});

// What was typed in greyed-out fields still travels with the form, as without JavaScript: the server ignores it,
// and it is there again when the admin switches back. The page greys them out again once the form has gone.
document.addEventListener("submit", (event) => {
  const form = event.target;
  for (const fieldset of form.querySelectorAll("fieldset[data-applies-name]")) fieldset.disabled = false;
  setTimeout(() => refreshApplies(form));
}, true);

// The properties dialog's tabs switch in place (without JavaScript each one submits the form).
function showTab(tab) {
  const form = tab.form;
  for (const other of form.querySelectorAll('[role="tab"]')) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
  }
  form.elements.tab.value = tab.value;
}

document.addEventListener("click", (event) => {
  const tab = event.target.closest('form [role="tab"]');
  if (tab) {
    event.preventDefault();
    showTab(tab);
  }
});

document.addEventListener("keydown", (event) => {
  const tab = event.target.closest('form [role="tab"]');
  if (!tab || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
  const tabs = [...tab.parentElement.querySelectorAll('[role="tab"]')];
  const next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
  event.preventDefault();
  showTab(next);
  next.focus();
});

// The wizard window: htmx loads the wizard's page into the list's <dialog>, which then opens modal.
// Each next page of the wizard replaces the previous one inside the open dialog; focus goes to its first field.
document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  const dialog = target.isConnected ? target.closest("dialog") : document.querySelector("dialog[open]");
  if (dialog === null) return;
  if (dialog.querySelector("form") === null) {
    // The answer wasn't a wizard page (say, the sign-in page after the session ended): open it as a page.
    window.location.assign(event.detail.pathInfo.requestPath);
    return;
  }
  if (!dialog.open) dialog.showModal();
  const first = dialog.querySelector("form input:not([type=hidden]):not(:disabled), form select");
  if (first) first.focus();
});

document.addEventListener("click", (event) => {
  const close = event.target.closest("[data-closes-dialog]");
  if (close) close.closest("dialog").close();
});

document.addEventListener("htmx:load", (event) => refreshAllApplies(event.detail.elt));
document.addEventListener("DOMContentLoaded", () => refreshAllApplies(document));
// Coming back with the browser's Back button shows the page as it was left: grey out again.
window.addEventListener("pageshow", () => refreshAllApplies(document));
