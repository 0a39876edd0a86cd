"""Static files inlined into the HTML report (app.css, app.js, template.html); a package so they ship."""
