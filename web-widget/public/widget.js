// @ts-check
// Haven's widget loader: the one script tag a helpline puts on its pages.
//
//   <script src="https://chat.example.org/widget.js" async
//           data-topic="algemeen" data-lang="nl-BE" data-colour="#0b5d66"
//           data-position="right" data-exit-url="https://www.weeronline.nl/"></script>
//
// It draws a launcher button in a closed shadow root (the page's CSS cannot
// reach it) and, when opened, frames the chat from Haven's own origin. The
// chat, and the WebSocket, live in that frame, so nothing the page runs
// (analytics, session replay, a tag manager) can read what is typed. The
// frame and this loader exchange only UI events by postMessage, each side
// accepting them only from the other's origin. Loading this script twice,
// or opening the chat twice, changes nothing.
(() => {
  const w = /** @type {any} */ (window);
  if (w.HavenChat) return;
  const script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
  if (!script) return;
  const haven = new URL(script.src).origin;
  const d = script.dataset;
  const exitUrl = d.exitUrl || 'https://www.google.com/';
  const colour = /^#[0-9a-fA-F]{3,8}$/.test(d.colour || '') ? d.colour : '#0b5d66';
  const side = d.position === 'left' ? 'left' : 'right';
  const label = d.label || 'Chat';

  const host = document.createElement('div');
  host.id = 'haven-chat';
  const root = host.attachShadow({ mode: 'closed' });
  // A constructed stylesheet, not a <style> element: a host page whose
  // Content-Security-Policy forbids inline styles still shows the launcher.
  const css = `:host{all:initial}
button{position:fixed;bottom:20px;${side}:20px;z-index:2147483646;font:600 16px system-ui,sans-serif;
color:#fff;background:${colour};border:0;border-radius:28px;padding:14px 22px;cursor:pointer;
box-shadow:0 2px 8px rgba(0,0,0,.3)}
button:focus-visible{outline:3px solid #1a73e8;outline-offset:3px}
b{margin-left:8px;background:#b00020;border-radius:10px;padding:0 7px}
div{position:fixed;bottom:20px;${side}:20px;z-index:2147483647;width:380px;height:600px;
max-width:calc(100vw - 40px);max-height:calc(100vh - 40px);box-shadow:0 4px 24px rgba(0,0,0,.35);
border-radius:10px;overflow:hidden;background:#fff}
iframe{border:0;width:100%;height:100%}
@media (max-width:480px){div{inset:0;width:100%;height:100%;max-width:none;max-height:none;border-radius:0}}
[hidden]{display:none}`;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(css);
  root.adoptedStyleSheets = [sheet];
  root.innerHTML = '<button type="button" aria-expanded="false"></button><div hidden></div>';
  const button = /** @type {HTMLButtonElement} */ (root.querySelector('button'));
  const panel = /** @type {HTMLDivElement} */ (root.querySelector('div'));
  button.textContent = label;
  /** @type {HTMLIFrameElement | null} */
  let frame = null;
  let lastEscape = 0;
  const title = document.title;

  /** @param {object} message */
  const tell = (message) => frame?.contentWindow?.postMessage({ haven: 1, ...message }, haven);

  const open = () => {
    if (!frame) {
      const query = new URLSearchParams({ host: location.origin, colour: colour || '' });
      if (d.topic) query.set('topic', d.topic);
      if (d.chatLanguage) query.set('chat_language', d.chatLanguage);
      query.set('lang', d.lang || document.documentElement.lang || '');
      frame = document.createElement('iframe');
      frame.title = label;
      frame.referrerPolicy = 'no-referrer';
      frame.allow = 'autoplay';
      frame.src = `${haven}/embed/chat.html?${query}`;
      panel.append(frame);
    }
    panel.hidden = false;
    button.hidden = true;
    button.setAttribute('aria-expanded', 'true');
    document.title = title;
    tell({ type: 'visible', value: true });
    frame.focus();
  };

  const close = () => {
    panel.hidden = true;
    button.hidden = false;
    button.setAttribute('aria-expanded', 'false');
    tell({ type: 'visible', value: false });
    button.focus();
  };

  const exit = () => {
    panel.remove();
    location.replace(exitUrl);
  };

  button.addEventListener('click', open);
  addEventListener('message', (event) => {
    if (event.origin !== haven || !frame || event.source !== frame.contentWindow) return;
    const m = event.data;
    if (!m || m.haven !== 1) return;
    if (m.type === 'ready') tell({ type: 'visible', value: !panel.hidden });
    else if (m.type === 'minimise') close();
    else if (m.type === 'quick-exit') exit();
    else if (m.type === 'unread') {
      const n = Math.max(0, Number(m.count) | 0);
      button.textContent = label;
      if (n > 0) {
        const badge = document.createElement('b');
        badge.textContent = String(n);
        button.append(badge);
      }
      document.title = n > 0 ? `(${n}) ${title}` : title;
    } else if (m.type === 'attention' && panel.hidden) {
      document.title = `(1) ${title}`;
    }
  });
  // Escape twice leaves at once, wherever focus is on the page.
  addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || !frame) return;
    const now = Date.now();
    if (now - lastEscape < 800) {
      // Let the chat end and wipe its storage first; it answers with
      // quick-exit, and at the latest we leave a moment later anyway.
      tell({ type: 'quick-exit' });
      setTimeout(exit, 300);
    }
    lastEscape = now;
  });

  document.body.append(host);
  w.HavenChat = Object.freeze({ open, close });
})();
