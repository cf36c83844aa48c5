// The periodic-task admin form: shows the chosen crontab in words under its help text.
// Loaded from templates/admin/djcelery/change_periodictask_form.html in place of
// django-celery-beat's inline script, which the Content-Security-Policy blocks.
(function () {
  "use strict";
  var data = document.getElementById("readable-crontabs");
  var select = document.getElementById("id_crontab");
  var help = document.querySelector(".field-crontab .help");
  if (!data || !select || !help) {
    return;
  }
  var readable = JSON.parse(data.textContent);
  var original = help.textContent;
  var translation = document.querySelector(".field-crontab_translation");
  if (translation) {
    translation.style.display = "none";
  }
  select.addEventListener("change", function () {
    help.textContent = original;
    var words = readable[select.value];
    if (words) {
      help.appendChild(document.createElement("br"));
      help.appendChild(document.createTextNode("Translation: " + words));
    }
  });
})();
