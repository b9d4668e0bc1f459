// Reloads the page every 10 seconds while the "auto-refresh" box is ticked
// (remembered in localStorage). Without JavaScript the page is the same,
// only static; the box stays hidden.
(function () {
  var box = document.getElementById("autorefresh");
  if (!box) { return; }
  box.parentElement.hidden = false;
  box.checked = window.localStorage.getItem("regmirror-refresh") !== "off";
  box.addEventListener("change", function () {
    window.localStorage.setItem("regmirror-refresh", box.checked ? "on" : "off");
  });
  window.setInterval(function () {
    if (box.checked && !document.hidden) { window.location.reload(); }
  }, 10000);
})();
