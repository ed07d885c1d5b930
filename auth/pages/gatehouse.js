// gatehouse.js: the one script of the gateway's pages (sign-in, second
// step, account). It is served by the gateway itself and allowed by the
// pages' CSP (script-src 'self'); the pages carry no inline script and no
// inline handler. It binds to data attributes:
//
//   <form data-passkey="register" data-options="/me/passkeys/options"
//         data-finish="/me/passkeys"> with an <input name="name">
//       adds a passkey, then reloads the page.
//   <button data-passkey="login" data-options="/login/passkey/options"
//           data-finish="/login/passkey" data-rd="/app/">
//       signs in with a passkey (discoverable), then goes to rd.
//   <button data-passkey="second-factor" data-options="..." data-finish="..."
//           data-rd="...">
//       answers the second step of a sign-in with a passkey, then goes to rd.
//   <button data-copy="ID">   copies the text of element ID (a token shown once).
//
// Messages go to the element named by data-status (an id), else the nearest
// [role=status] in the same form or section, else the page's first one.
// Render these controls with the hidden attribute: this script shows them,
// so a browser without JavaScript never offers what cannot work. Without
// WebAuthn in the browser, passkey controls stay hidden and the status says
// why.
(function () {
  "use strict";

  // --- base64url <-> ArrayBuffer -------------------------------------------

  function b64urlToBuffer(s) {
    var b64 = String(s).replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufferToB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // --- options from the server's JSON ---------------------------------------

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: b64urlToBuffer(d.id) };
      if (d.transports) out.transports = d.transports;
      return out;
    });
  }

  function creationOptions(json) {
    var PKC = window.PublicKeyCredential;
    if (PKC && typeof PKC.parseCreationOptionsFromJSON === "function") {
      return PKC.parseCreationOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = b64urlToBuffer(json.challenge);
    o.user = Object.assign({}, json.user, { id: b64urlToBuffer(json.user.id) });
    if (json.excludeCredentials) o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    var PKC = window.PublicKeyCredential;
    if (PKC && typeof PKC.parseRequestOptionsFromJSON === "function") {
      return PKC.parseRequestOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = b64urlToBuffer(json.challenge);
    if (json.allowCredentials) o.allowCredentials = descriptors(json.allowCredentials);
    return o;
  }

  // credentialJSON is PublicKeyCredential.toJSON(), or the same by hand.
  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") return cred.toJSON();
    var r = cred.response;
    var resp = { clientDataJSON: bufferToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      resp.attestationObject = bufferToB64url(r.attestationObject);
      if (typeof r.getTransports === "function") resp.transports = r.getTransports();
    }
    if (r.authenticatorData) resp.authenticatorData = bufferToB64url(r.authenticatorData);
    if (r.signature) resp.signature = bufferToB64url(r.signature);
    if (r.userHandle) resp.userHandle = bufferToB64url(r.userHandle);
    return {
      id: cred.id,
      rawId: bufferToB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: resp,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  // --- talking to the gateway -----------------------------------------------

  var messages = {
    invalid_code: "The passkey could not be verified. Try again.",
    invalid_credentials: "The passkey could not be verified. Try again.",
    too_many_attempts: "Too many failed attempts. Try again later.",
    unauthenticated: "Your session has ended. Sign in again.",
    conflict: "This passkey is already registered, or you have too many.",
    forbidden: "Passkeys are not available here.",
    store_unavailable: "The service is temporarily unavailable. Try again in a moment."
  };

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body === undefined ? {} : body)
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!res.ok) {
          var e0 = data && data.errors && data.errors[0];
          var err = new Error((e0 && messages[e0.code]) || (e0 && e0.detail) || "The request failed (" + res.status + ").");
          err.code = e0 && e0.code;
          throw err;
        }
        return data;
      });
    });
  }

  // safeTarget keeps a navigation on this origin: a path ("/x", not "//x"),
  // or an absolute http(s) URL (which the server has vetted as rd).
  function safeTarget(t) {
    if (typeof t !== "string" || t === "") return null;
    if (t.charAt(0) === "/" && t.charAt(1) !== "/" && t.charAt(1) !== "\\") return t;
    try {
      var u = new URL(t, location.href);
      if (u.protocol === "https:" || u.protocol === "http:") return u.href;
    } catch (e) { /* not a URL */ }
    return null;
  }

  function statusFor(el) {
    var id = el.getAttribute("data-status");
    if (id && document.getElementById(id)) return document.getElementById(id);
    var scope = el.closest("form, section");
    return (scope && scope.querySelector("[role=status]")) || document.querySelector("[role=status]");
  }

  function say(el, text) {
    var s = statusFor(el);
    if (s) s.textContent = text;
  }

  function failure(el, err) {
    // The user closing the browser's dialog is not an error worth a scare.
    if (err && (err.name === "NotAllowedError" || err.name === "AbortError")) {
      say(el, "The passkey request was cancelled or timed out.");
    } else if (err && err.name === "InvalidStateError") {
      say(el, "This authenticator already holds a passkey for this account.");
    } else {
      say(el, (err && err.message) || "Something went wrong.");
    }
  }

  // --- the three flows ------------------------------------------------------

  function register(form) {
    var input = form.querySelector("input[name=name]");
    var name = input ? input.value : "";
    return postJSON(form.getAttribute("data-options"), {}).then(function (opts) {
      return navigator.credentials.create({ publicKey: creationOptions(opts.publicKey) });
    }).then(function (cred) {
      return postJSON(form.getAttribute("data-finish"), { name: name, credential: credentialJSON(cred) });
    }).then(function () {
      say(form, "Passkey added.");
      location.reload();
    });
  }

  function assert(el) {
    return postJSON(el.getAttribute("data-options"), {}).then(function (opts) {
      var req = { publicKey: requestOptions(opts.publicKey) };
      if (opts.mediation) req.mediation = opts.mediation;
      return navigator.credentials.get(req);
    }).then(function (cred) {
      return postJSON(el.getAttribute("data-finish"), credentialJSON(cred));
    }).then(function (data) {
      say(el, "Signed in.");
      var target = safeTarget(data && data.redirect) || safeTarget(el.getAttribute("data-rd")) || "/";
      location.assign(target);
    });
  }

  function bindPasskey(el) {
    var kind = el.getAttribute("data-passkey");
    var flow = kind === "register" ? register : (kind === "login" || kind === "second-factor") ? assert : null;
    if (!flow) return;
    var button = el.tagName === "FORM" ? el.querySelector("button, [type=submit]") : el;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      if (button) button.disabled = true;
      say(el, "This browser does not support passkeys.");
      return;
    }
    if (!el.getAttribute("data-options") || !el.getAttribute("data-finish")) return;
    // Pages render passkey controls hidden, so that without this script
    // (JavaScript off) nobody sees a button that cannot work.
    el.hidden = false;
    var busy = false;
    el.addEventListener(el.tagName === "FORM" ? "submit" : "click", function (ev) {
      ev.preventDefault();
      if (busy) return;
      busy = true;
      if (button) button.disabled = true;
      say(el, "");
      flow(el).catch(function (err) { failure(el, err); }).then(function () {
        busy = false;
        if (button) button.disabled = false;
      });
    });
  }

  function bindCopy(btn) {
    btn.hidden = false;
    btn.addEventListener("click", function (ev) {
      ev.preventDefault();
      var target = document.getElementById(btn.getAttribute("data-copy"));
      if (!target) return;
      var text = "value" in target && target.tagName !== "BUTTON" ? target.value : target.textContent;
      var done = function () { say(btn, "Copied."); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text.trim()).then(done, function () {
          say(btn, "Could not copy: select the text and copy it by hand.");
        });
      } else {
        say(btn, "Select the text and copy it by hand.");
      }
    });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-passkey]"), bindPasskey);
    Array.prototype.forEach.call(document.querySelectorAll("[data-copy]"), bindCopy);
  }

  // The codecs are exposed for tests; nothing here is a secret.
  window.gatehouse = { b64urlToBuffer: b64urlToBuffer, bufferToB64url: bufferToB64url };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
