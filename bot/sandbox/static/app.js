// GridBot sandbox chat page: talk to the bot as a resident, like in a Telegram app.
// Plain browser JavaScript, no build step. Every piece of text reaches the page through
// textContent / text nodes, never through innerHTML, so bot and user text cannot inject markup.
"use strict";

const API = "/sandbox/api";
const $ = (id) => document.getElementById(id);

const state = {
  bots: [],
  users: [],
  botId: null,
  user: null,
  transcript: null,
  seq: 0,
  generation: 0,
  lastToast: null,
  pickerTimer: null,
  pickerKey: null,
  closedGroups: new Set(),
  pendingInvite: null, // a start link waiting for someone to open it (chosen in the picker)
  pastedLink: null, // the text pasted into the composer while the invite dialog is open
  pendingPhotos: [],
  stick: true, // follow the newest message (the user has not scrolled up)
  newestId: 0,
};

// ---------------------------------------------------------------------------------------------
// control API

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(API + path, options);
  let payload;
  try {
    payload = await response.json();
  } catch (error) {
    throw new Error(`${response.status} ${response.statusText}`);
  }
  if (!payload.ok) throw new Error(payload.description || `error ${response.status}`);
  return payload.result;
}

const act = (action, body) => api("POST", `/bots/${state.botId}/users/${state.user.id}/${action}`, body);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// identity: each tab is one person (kept in the URL hash and in sessionStorage)

function readIdentity() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const saved = JSON.parse(sessionStorage.getItem("sandbox-identity") || "{}");
  return {
    bot: hash.get("bot") || saved.bot || null,
    user: hash.get("user") || saved.user || null,
  };
}

function saveIdentity() {
  const identity = { bot: String(state.botId), user: String(state.user.id) };
  sessionStorage.setItem("sandbox-identity", JSON.stringify(identity));
  history.replaceState(null, "", `${location.pathname}${location.search}#bot=${identity.bot}&user=${identity.user}`);
}

function clearIdentity() {
  sessionStorage.removeItem("sandbox-identity");
  history.replaceState(null, "", location.pathname + location.search);
}

function fullName(user) {
  return [user.first_name, user.last_name].filter(Boolean).join(" ");
}

function avatar(name) {
  const element = document.createElement("span");
  element.className = "avatar";
  element.textContent = (name || "?").trim().slice(0, 1).toUpperCase();
  let hash = 0;
  for (const char of name || "") hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  element.style.background = `hsl(${hash % 360} 55% 52%)`;
  return element;
}

// ---------------------------------------------------------------------------------------------
// picker screen

async function loadWorld() {
  const info = await api("GET", "/info");
  state.bots = info.bots;
  state.users = info.users;
  if (!state.botId || !state.bots.some((bot) => String(bot.id) === String(state.botId))) {
    state.botId = state.bots.length ? state.bots[0].id : null;
  }
}

// Phone numbers as people read them: "+86 166 2204 1617", "166 2204 1617"; Telegram gives
// them without the "+" ("8616622041617").
function formatPhone(raw) {
  const text = String(raw || "").trim();
  const digits = text.replace(/\D/g, "");
  const mobile = (number) => `${number.slice(0, 3)} ${number.slice(3, 7)} ${number.slice(7)}`;
  if (/^861\d{10}$/.test(digits) && /^\+?[\d\s-]+$/.test(text)) return `+86 ${mobile(digits.slice(2))}`;
  if (/^1\d{10}$/.test(digits) && /^[\d\s-]+$/.test(text)) return mobile(digits);
  return text;
}

const OTHERS = "其他 Others";

// What a search matches: name, group (role), note (grids), @username, id, and the phone
// number's digits (typed with or without spaces, "+" or the 86 prefix).
function matches(user, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const text = [fullName(user), user.group, user.note, user.username && `@${user.username}`, String(user.id)]
    .filter(Boolean).join(" ").toLowerCase();
  const phone = String(user.phone_number || "").replace(/\D/g, "");
  const digits = query.replace(/[\s+()-]/g, "");
  if (/^\d{3,}$/.test(digits) && phone.includes(digits)) return true;
  return words.every((word) => text.includes(word) || (/^\+?\d+$/.test(word) && phone.includes(word.replace("+", ""))));
}

function personButton(user) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "person";
  button.title = `id ${user.id}`;
  const label = document.createElement("span");
  label.className = "person-label";
  const name = document.createElement("span");
  name.className = "person-name";
  name.textContent = fullName(user);
  const detail = document.createElement("small");
  detail.className = "person-detail";
  detail.textContent = [user.note, user.username && `@${user.username}`].filter(Boolean).join(" · ");
  const phone = document.createElement("small");
  phone.className = "phone";
  phone.textContent = formatPhone(user.phone_number);
  label.append(name, detail);
  button.append(avatar(user.first_name), label, phone);
  button.disabled = state.bots.length === 0;
  button.addEventListener("click", () => pickUser(user));
  return button;
}

function renderPicker() {
  $("no-bot").hidden = state.bots.length > 0;
  $("bot-field").hidden = state.bots.length < 2;
  const query = $("user-search").value.trim();
  const key = JSON.stringify([state.bots, state.users, state.botId, query]);
  if (key === state.pickerKey) return; // nothing new: leave the list (and a hovered button) be
  state.pickerKey = key;
  const select = $("bot-select");
  select.replaceChildren(
    ...state.bots.map((bot) => {
      const option = document.createElement("option");
      option.value = bot.id;
      option.textContent = `${bot.first_name} (@${bot.username})`;
      option.selected = String(bot.id) === String(state.botId);
      return option;
    }),
  );
  // groups in the order their first member comes (the sandbox lists senior roles first)
  const groups = new Map();
  for (const user of state.users) {
    const group = user.group || OTHERS;
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(user);
  }
  if (groups.has(OTHERS)) {
    const others = groups.get(OTHERS);
    groups.delete(OTHERS);
    groups.set(OTHERS, others);
  }
  const sections = [];
  for (const [group, members] of groups) {
    const shown = members.filter((user) => matches(user, query));
    if (!shown.length) continue;
    const section = document.createElement("details");
    section.className = "user-group";
    section.dataset.group = group;
    section.open = Boolean(query) || !state.closedGroups.has(group);
    const heading = document.createElement("summary");
    const title = document.createElement("span");
    title.textContent = group;
    const count = document.createElement("small");
    count.className = "count";
    count.textContent = query ? `${shown.length} / ${members.length}` : String(members.length);
    heading.append(title, count);
    const list = document.createElement("ul");
    list.className = "user-list";
    list.append(...shown.map((user) => {
      const item = document.createElement("li");
      item.append(personButton(user));
      return item;
    }));
    section.append(heading, list);
    section.addEventListener("toggle", () => {
      if (query) return;
      if (section.open) state.closedGroups.delete(group);
      else state.closedGroups.add(group);
    });
    sections.push(section);
  }
  $("user-list").replaceChildren(...sections);
  $("no-match").hidden = sections.length > 0 || state.users.length === 0;
  $("new-user").querySelector("button").disabled = state.bots.length === 0;
}

function renderInviteBanner() {
  const invite = state.pendingInvite;
  $("invite-banner").hidden = !invite;
  $("picker-invite").hidden = Boolean(invite);
  if (invite) $("invite-banner-link").textContent = invite.text;
}

// Someone chosen in the picker (or just created there): their chat, and the invite waiting
// to be opened, if any.
async function pickUser(user) {
  const invite = state.pendingInvite;
  state.pendingInvite = null;
  if (invite) state.botId = invite.bot.id;
  try {
    await enterChat(user);
    if (invite) await startLink(invite);
  } catch (error) {
    showAlert(error.message);
  }
}

async function showPicker() {
  state.generation += 1;
  $("chat").hidden = true;
  $("picker").hidden = false;
  clearIdentity();
  renderInviteBanner();
  state.pickerKey = null;
  const refresh = async () => {
    try {
      await loadWorld();
      renderPicker();
    } catch (error) {
      console.warn(error);
    }
  };
  await refresh();
  clearInterval(state.pickerTimer);
  state.pickerTimer = setInterval(refresh, 3000);
}

// ---------------------------------------------------------------------------------------------
// chat screen

async function enterChat(user) {
  clearInterval(state.pickerTimer);
  state.user = user;
  state.transcript = null;
  state.seq = 0;
  state.lastToast = null;
  state.stick = true;
  state.newestId = 0;
  delete $("messages").dataset.rendered;
  saveIdentity();
  $("picker").hidden = true;
  $("chat").hidden = false;
  $("whoami").textContent = `我是 I am: ${fullName(user)} (id ${user.id})`;
  await refresh();
  const generation = ++state.generation;
  pollEvents(generation);
  $("text").focus();
}

async function refresh() {
  const transcript = await api("GET", `/bots/${state.botId}/chats/${state.user.id}`);
  state.transcript = transcript;
  state.seq = Math.max(state.seq, transcript.seq);
  renderChat();
}

async function pollEvents(generation) {
  while (generation === state.generation) {
    try {
      const events = await api("GET", `/bots/${state.botId}/chats/${state.user.id}/events?after=${state.seq}&timeout=25`);
      if (generation !== state.generation) return;
      if (events.length) {
        state.seq = events[events.length - 1].seq;
        await refresh();
      }
    } catch (error) {
      console.warn("events:", error);
      await sleep(2000);
    }
  }
}

function renderChat() {
  const t = state.transcript;
  $("bot-name").textContent = t.bot.first_name;
  const action = t.chat_action && t.chat_action.until * 1000 > Date.now() ? t.chat_action.action : null;
  $("chat-status").textContent = action ? actionLabel(action) : `@${t.bot.username} · 机器人 bot`;
  if (action) setTimeout(() => state.transcript === t && renderChat(), 5500);

  const box = $("messages");
  const follow = state.stick || !box.dataset.rendered;
  const newest = t.messages[t.messages.length - 1];
  // what the person just sent themselves is always brought into view, as in Telegram
  const sentNow = newest && newest.from === "user" && newest.sender_id === state.user.id
    && newest.message_id > state.newestId;
  state.newestId = newest ? newest.message_id : 0;
  const nodes = [];
  let lastDay = null;
  for (const message of t.messages) {
    const day = new Date(message.date * 1000).toLocaleDateString();
    if (day !== lastDay) {
      const separator = document.createElement("div");
      separator.className = "day";
      separator.textContent = day;
      nodes.push(separator);
      lastDay = day;
    }
    nodes.push(renderMessage(message, t));
  }
  box.replaceChildren(...nodes);
  box.dataset.rendered = "1";

  renderPinned(t);
  renderReplyKeyboard(t);
  $("start-row").hidden = t.started || t.blocked;
  $("blocked-row").hidden = !t.blocked;
  $("composer").hidden = !t.started || t.blocked;
  $("block-toggle").textContent = t.blocked ? "取消屏蔽 Unblock bot" : "屏蔽机器人 Block bot";
  $("text").placeholder = (t.force_reply && t.force_reply.input_field_placeholder)
    || (t.reply_keyboard && t.reply_keyboard.input_field_placeholder)
    || "输入消息… Message…";
  // scroll only now: the pinned bar and a reply keyboard take room from the messages
  if (follow || sentNow) scrollToNewest();
  else updateToBottom();
  renderCommands(t);
  showToast(t);
}

// -- following the newest message ---------------------------------------------------------------
// The list stays at its newest message while the person has not scrolled up: after every
// render, when a photo finishes loading (it may be taller than the room kept for it) and when
// the list's own height changes (a reply keyboard opens or closes, the window is resized).

function atNewest(box) {
  return box.scrollHeight - box.scrollTop - box.clientHeight < 60;
}

function scrollToNewest() {
  const box = $("messages");
  box.scrollTop = box.scrollHeight;
  state.stick = true;
  updateToBottom();
}

function followNewest() {
  if (state.stick && !$("chat").hidden) scrollToNewest();
}

function updateToBottom() {
  $("to-bottom").hidden = atNewest($("messages"));
}

function actionLabel(action) {
  const labels = {
    typing: "正在输入… typing…",
    upload_photo: "正在发送照片… sending a photo…",
    upload_document: "正在发送文件… sending a file…",
    find_location: "正在选择位置… choosing a location…",
  };
  return labels[action] || `${action}…`;
}

function renderPinned(t) {
  const pinned = $("pinned");
  const message = t.messages.find((m) => m.message_id === t.pinned_message_id);
  pinned.hidden = !message;
  if (!message) return;
  const label = document.createElement("b");
  label.textContent = "置顶 Pinned";
  pinned.replaceChildren(label, document.createTextNode(summary(message)));
  pinned.onclick = () => flash(message.message_id);
}

function summary(message) {
  if (message.text || message.caption) return (message.text || message.caption).slice(0, 80);
  if (message.photo) return "🖼 照片 Photo";
  if (message.document) return `📄 ${message.document.file_name || "文件 File"}`;
  if (message.location) return "📍 位置 Location";
  if (message.contact) return `👤 ${formatPhone(message.contact.phone_number)}`;
  return "…";
}

function flash(messageId) {
  const bubble = document.querySelector(`[data-message-id="${messageId}"] .bubble`);
  if (!bubble) return;
  bubble.scrollIntoView({ block: "center", behavior: "smooth" });
  bubble.classList.add("flash");
  setTimeout(() => bubble.classList.remove("flash"), 1200);
}

function renderMessage(message, t) {
  const row = document.createElement("div");
  row.dataset.messageId = message.message_id;
  if (message.service) {
    row.className = "row service";
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    const pinned = t.messages.find((m) => m.message_id === message.pinned_message_id);
    bubble.textContent = `${message.sender_name} 置顶了 pinned「${pinned ? summary(pinned) : "…"}」`;
    row.append(bubble);
    return row;
  }
  row.className = `row ${message.from}`;
  if (message.from === "user" && message.sender_id !== state.user.id) {
    const sender = document.createElement("div");
    sender.className = "sender";
    sender.textContent = message.sender_name;
    row.append(sender);
  }
  const bubble = document.createElement("div");
  bubble.className = "bubble";

  if (message.reply_to_message_id) {
    const replied = t.messages.find((m) => m.message_id === message.reply_to_message_id);
    const quote = document.createElement("div");
    quote.className = "reply-quote";
    quote.textContent = replied ? summary(replied) : "已删除的消息 deleted message";
    quote.onclick = () => flash(message.reply_to_message_id);
    bubble.append(quote);
  }
  if (message.photo) {
    const image = document.createElement("img");
    image.className = "photo";
    image.src = message.photo.url;
    image.alt = "照片 photo";
    image.loading = "lazy";
    image.width = message.photo.width;
    image.height = message.photo.height;
    photoBox(image, message.photo.width, message.photo.height);
    image.addEventListener("load", followNewest);
    image.onclick = () => window.open(message.photo.url, "_blank", "noopener");
    bubble.append(image);
  }
  if (message.document) bubble.append(documentCard(message.document));
  if (message.location) bubble.append(locationCard(message.location));
  if (message.contact) bubble.append(contactCard(message.contact));
  const text = message.text ?? message.caption;
  if (text) bubble.append(renderEntities(text, message.entities || []));

  const meta = document.createElement("span");
  meta.className = "meta";
  const time = new Date(message.date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.textContent = `${message.edit_date ? "已编辑 edited · " : ""}${time}`;
  bubble.append(meta);
  row.append(bubble);

  if (message.inline_keyboard) row.append(inlineKeyboard(message));
  return row;
}

// The room a photo takes, known before it loads (so nothing below it moves when it does):
// its shape, at most 360 px high, at least 96 px wide, never wider than the bubble.
function photoBox(image, width, height) {
  if (!(width > 0 && height > 0)) return;
  image.style.aspectRatio = `${width} / ${height}`;
  image.style.width = `${Math.round(Math.max(96, Math.min(width, (360 * width) / height)))}px`;
}

function documentCard(document_) {
  const card = document.createElement("div");
  card.className = "card";
  const icon = document.createElement("span");
  icon.className = "big";
  icon.textContent = "📄";
  const link = document.createElement("a");
  link.href = document_.url;
  link.download = document_.file_name || "file";
  link.textContent = document_.file_name || "文件 file";
  const size = document.createElement("small");
  size.textContent = ` ${formatSize(document_.file_size)} · ${document_.mime_type || ""}`;
  const label = document.createElement("span");
  label.append(link, document.createElement("br"), size);
  card.append(icon, label);
  return card;
}

function locationCard(location_) {
  const card = document.createElement("div");
  card.className = "card";
  const icon = document.createElement("span");
  icon.className = "big";
  icon.textContent = "📍";
  const label = document.createElement("span");
  const title = document.createElement("b");
  title.textContent = "位置 Location";
  const coordinates = document.createElement("small");
  coordinates.textContent = `${location_.latitude.toFixed(6)}, ${location_.longitude.toFixed(6)}`;
  label.append(title, document.createElement("br"), coordinates);
  card.append(icon, label);
  return card;
}

function contactCard(contact) {
  const card = document.createElement("div");
  card.className = "card";
  const name = [contact.first_name, contact.last_name].filter(Boolean).join(" ");
  const label = document.createElement("span");
  const title = document.createElement("b");
  title.textContent = name;
  const phone = document.createElement("small");
  phone.textContent = formatPhone(contact.phone_number);
  label.append(title, document.createElement("br"), phone);
  card.append(avatar(name), label);
  return card;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// -- formatted text: Telegram entities (UTF-16 offsets, like JavaScript string indices) --------

function safeUrl(url) {
  try {
    const parsed = new URL(url, location.href);
    return ["http:", "https:", "mailto:", "tel:"].includes(parsed.protocol) ? parsed.href : null;
  } catch (error) {
    return null;
  }
}

function entityElement(entity, content) {
  const make = (tag, className) => {
    const element = document.createElement(tag);
    if (className) element.className = className;
    return element;
  };
  switch (entity.type) {
    case "bold": return [make("b")];
    case "italic": return [make("i")];
    case "underline": return [make("u")];
    case "strikethrough": return [make("s")];
    case "code": return [make("code")];
    case "pre": {
      const pre = make("pre");
      const code = make("code");
      if (entity.language) code.dataset.language = entity.language;
      pre.append(code);
      return [pre, code];
    }
    case "blockquote": return [make("blockquote")];
    case "expandable_blockquote": {
      const quote = make("blockquote", "collapsed");
      quote.onclick = () => quote.classList.toggle("collapsed");
      return [quote];
    }
    case "spoiler": {
      const spoiler = make("span", "spoiler");
      spoiler.title = "点击显示 click to reveal";
      spoiler.onclick = () => spoiler.classList.add("revealed");
      return [spoiler];
    }
    case "text_link":
    case "url":
    case "email": {
      const target = entity.type === "text_link" ? entity.url
        : entity.type === "email" ? `mailto:${content}`
        : (/^[a-z]+:\/\//i.test(content) ? content : `http://${content}`);
      // a tg://resolve start link is kept too: the page opens it itself, below
      const href = safeUrl(target) || (parseStartLink(target) ? target.trim() : null);
      if (!href) return [make("span")];
      const link = make("a");
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      if (parseStartLink(href)) {
        // a t.me start link (an invitation, a grid's join link) opens here, in the sandbox
        link.classList.add("start-link");
        link.title = "在沙盒里打开 Open in the sandbox";
        link.onclick = (event) => {
          event.preventDefault();
          askInvite(href);
        };
      }
      return [link];
    }
    case "bot_command": {
      const command = make("span", "entity-cmd");
      command.title = "点击发送 click to send";
      command.onclick = () => sendText(content);
      return [command];
    }
    case "mention":
    case "text_mention": return [make("span", "mention")];
    case "hashtag":
    case "cashtag": return [make("span", "hashtag")];
    default: return [make("span")];
  }
}

function renderEntities(text, entities) {
  const sorted = entities
    .filter((e) => Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0)
    .slice()
    .sort((a, b) => a.offset - b.offset || b.length - a.length);
  const container = document.createElement("span");
  container.append(buildEntities(text, 0, text.length, sorted));
  return container;
}

function buildEntities(text, start, end, entities) {
  const fragment = document.createDocumentFragment();
  let position = start;
  let index = 0;
  while (index < entities.length) {
    const entity = entities[index];
    const entityStart = Math.max(entity.offset, start);
    const entityEnd = Math.min(entity.offset + entity.length, end);
    if (entityStart < position || entityEnd <= entityStart) {
      index += 1;
      continue;
    }
    if (entityStart > position) fragment.append(text.slice(position, entityStart));
    const inner = [];
    let next = index + 1;
    while (next < entities.length && entities[next].offset < entityEnd) {
      inner.push(entities[next]);
      next += 1;
    }
    const [outer, holder] = entityElement(entity, text.slice(entityStart, entityEnd));
    (holder || outer).append(buildEntities(text, entityStart, entityEnd, inner));
    fragment.append(outer);
    position = entityEnd;
    index = next;
  }
  if (position < end) fragment.append(text.slice(position, end));
  return fragment;
}

// -- keyboards ---------------------------------------------------------------------------------

function inlineKeyboard(message) {
  const keyboard = document.createElement("div");
  keyboard.className = "inline-keyboard";
  for (const row of message.inline_keyboard) {
    const line = document.createElement("div");
    line.className = "kb-row";
    for (const button of row) {
      const element = document.createElement("button");
      element.textContent = button.text;
      if (button.url) {
        element.className = "link";
        element.title = button.url;
        element.onclick = () => {
          const href = safeUrl(button.url);
          if (parseStartLink(button.url)) askInvite(button.url.trim());
          else if (href) window.open(href, "_blank", "noopener");
        };
      } else if (button.callback_data !== undefined) {
        element.onclick = async () => {
          element.disabled = true;
          try {
            await act("press", { message_id: message.message_id, callback_data: button.callback_data });
          } catch (error) {
            showAlert(error.message);
          }
          setTimeout(() => { element.disabled = false; }, 800);
        };
      } else {
        element.disabled = true;
        element.title = "沙盒不支持此按钮 not supported in the sandbox";
      }
      line.append(element);
    }
    keyboard.append(line);
  }
  return keyboard;
}

function renderReplyKeyboard(t) {
  const box = $("reply-keyboard");
  const keyboard = t.reply_keyboard;
  $("keyboard-toggle").hidden = !keyboard;
  if (box.dataset.forMessage !== String(t.reply_keyboard_message_id)) {
    // a new keyboard from the bot: forget whether the previous one was folded away
    box.dataset.forMessage = String(t.reply_keyboard_message_id);
    box.dataset.userHidden = "";
    box.dataset.userShown = "";
  }
  if (!keyboard || t.blocked) {
    box.hidden = true;
    return;
  }
  if (box.dataset.userHidden === "1" || (t.keyboard_hidden && box.dataset.userShown !== "1")) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.classList.toggle("compact", Boolean(keyboard.resize_keyboard));
  box.replaceChildren(
    ...keyboard.keyboard.map((row) => {
      const line = document.createElement("div");
      line.className = "kb-row";
      for (const button of row) {
        const element = document.createElement("button");
        element.textContent = button.text;
        if (button.request_contact) {
          element.className = button.text.includes("👤") || button.text.includes("📱") ? "request" : "request contact";
          element.onclick = () => askContact();
        } else if (button.request_location) {
          element.className = button.text.includes("📍") ? "request" : "request location";
          element.onclick = () => askLocation(button.text);
        } else if (Object.keys(button).some((key) => !["text", "style", "icon_custom_emoji_id"].includes(key))) {
          element.disabled = true;
          element.title = "沙盒不支持此按钮 not supported in the sandbox";
        } else {
          element.onclick = () => pressReply(button.text);
        }
        line.append(element);
      }
      return line;
    }),
  );
}

async function pressReply(text) {
  try {
    await act("press_reply", { text });
    $("reply-keyboard").dataset.userShown = "";
  } catch (error) {
    showAlert(error.message);
  }
}

function renderCommands(t) {
  const menu = $("commands-menu");
  if (!t.commands.length) {
    const empty = document.createElement("div");
    empty.className = "empty";
    empty.textContent = "机器人没有设置命令 The bot has no commands";
    menu.replaceChildren(empty);
    return;
  }
  menu.replaceChildren(
    ...t.commands.map((command) => {
      const button = document.createElement("button");
      const name = document.createElement("span");
      name.className = "cmd";
      name.textContent = `/${command.command}`;
      button.append(name, document.createTextNode(command.description));
      button.onclick = () => {
        menu.hidden = true;
        sendText(`/${command.command}`);
      };
      return button;
    }),
  );
}

// -- toasts and alerts -------------------------------------------------------------------------

function showToast(t) {
  const toast = t.toast;
  if (!toast || toast.callback_query_id === state.lastToast) return;
  const initial = state.lastToast === null;
  state.lastToast = toast.callback_query_id;
  if (initial && Date.now() / 1000 - toast.date > 10) return; // an old answer, seen before
  if (!toast.text) return;
  if (toast.show_alert) {
    showAlert(toast.text);
    return;
  }
  const box = $("toast");
  box.textContent = toast.text;
  box.hidden = false;
  clearTimeout(box.timer);
  box.timer = setTimeout(() => { box.hidden = true; }, 2500);
}

function showAlert(text) {
  $("alert-text").textContent = text;
  const dialog = $("alert-dialog");
  if (!dialog.open) dialog.showModal();
}

// ---------------------------------------------------------------------------------------------
// start links (t.me/<bot>?start=<payload>): opened in the sandbox as a person of the page

const START_PAYLOAD = /^[A-Za-z0-9_-]{1,64}$/;
const BOT_USERNAME = /^[A-Za-z][A-Za-z0-9_]{3,31}$/;
const TELEGRAM_HOSTS = ["t.me", "www.t.me", "telegram.me", "www.telegram.me", "telegram.dog"];

// {username, payload} of a link that opens a bot (payload null: a plain /start); null for
// anything else. Takes https://t.me/<bot>?start=<payload>, t.me/<bot>?start=... without the
// scheme, telegram.me, and tg://resolve?domain=<bot>&start=<payload>. A payload Telegram would
// not pass on (not 1-64 of A-Z a-z 0-9 _ -) gives {error}.
function parseStartLink(text) {
  const raw = String(text || "").trim();
  if (!raw || raw.length > 2048 || /\s/.test(raw)) return null;
  let url;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:/i.test(raw) ? raw : `https://${raw}`);
  } catch (error) {
    return null;
  }
  let username;
  if (url.protocol === "tg:") {
    if (url.host.toLowerCase() !== "resolve" && url.pathname.replace(/^\/+/, "") !== "resolve") return null;
    username = url.searchParams.get("domain");
  } else if (["http:", "https:"].includes(url.protocol) && TELEGRAM_HOSTS.includes(url.hostname.toLowerCase())) {
    if (url.username || url.password || url.port) return null;
    const parts = url.pathname.split("/").filter(Boolean);
    if (parts.length !== 1) return null;
    username = decodeURIComponentSafe(parts[0]);
  } else {
    return null;
  }
  if (!username || !BOT_USERNAME.test(username)) return null;
  const payload = url.searchParams.get("start");
  if (payload === null) return { username, payload: null };
  if (!START_PAYLOAD.test(payload)) {
    return { username, payload: null, error: "启动参数无效：只能是 1-64 个字母、数字、_ 或 - The start parameter must be 1-64 letters, digits, _ or -" };
  }
  return { username, payload };
}

function decodeURIComponentSafe(text) {
  try {
    return decodeURIComponent(text);
  } catch (error) {
    return "";
  }
}

// The link as one of this sandbox's bots reads it: {bot, payload, text}, or {error}.
function resolveStartLink(text) {
  const link = parseStartLink(text);
  if (!link) return { error: "这不是 Telegram 机器人链接（例如 https://t.me/机器人?start=…） This is not a Telegram bot link (like https://t.me/bot?start=…)" };
  if (link.error) return link;
  const bot = state.bots.find((b) => b.username.toLowerCase() === link.username.toLowerCase());
  if (!bot) return { error: `沙盒里没有 @${link.username} 这个机器人 There is no bot @${link.username} in this sandbox` };
  const shown = `https://t.me/${bot.username}${link.payload ? `?start=${link.payload}` : ""}`;
  return { bot, payload: link.payload, text: shown };
}

// The person presses Start on the link's bot: "/start <payload>" reaches the bot, as when a
// real Telegram app opens the link (a blocked bot is unblocked first, as Telegram's Restart).
async function startLink(invite) {
  if (state.transcript && state.transcript.blocked) await act("unblock", {});
  await act("start", invite.payload ? { payload: invite.payload } : {});
  scrollToNewest();
}

function askInvite(text = "", { pasted = false } = {}) {
  const dialog = $("invite-dialog");
  $("invite-link").value = text;
  $("invite-error").hidden = true;
  state.pastedLink = pasted ? text : null;
  $("invite-cancel").textContent = pasted ? "粘贴为文字 Paste as text" : "取消 Cancel";
  $("invite-me").hidden = !state.user || $("chat").hidden;
  $("invite-me").textContent = state.user ? `以 ${fullName(state.user)} 的身份打开 Open as ${fullName(state.user)}` : "";
  if (!dialog.open) dialog.showModal();
  if (!text) $("invite-link").focus();
}

function inviteFromDialog() {
  const invite = resolveStartLink($("invite-link").value);
  if (invite.error) {
    $("invite-error").textContent = invite.error;
    $("invite-error").hidden = false;
    return null;
  }
  state.pastedLink = null;
  $("invite-dialog").close();
  return invite;
}

async function openInviteAsMe() {
  const invite = inviteFromDialog();
  if (!invite) return;
  try {
    if (String(invite.bot.id) !== String(state.botId)) {
      state.botId = invite.bot.id;
      await enterChat(state.user);
    }
    await startLink(invite);
  } catch (error) {
    showAlert(error.message);
  }
}

function openInviteAsOther() {
  const invite = inviteFromDialog();
  if (!invite) return;
  choosePersonFor(invite);
}

function choosePersonFor(invite) {
  state.pendingInvite = invite;
  state.botId = invite.bot.id;
  $("user-search").value = "";
  showPicker();
  $("user-search").focus();
}

// ---------------------------------------------------------------------------------------------
// sending

async function sendText(text) {
  if (!text.trim()) return;
  try {
    await act("send", { text });
  } catch (error) {
    showAlert(error.message);
  }
}

function askContact() {
  $("contact-text").textContent = `${fullName(state.user)} · ${formatPhone(state.user.phone_number)}`;
  const dialog = $("contact-dialog");
  dialog.returnValue = "";
  dialog.showModal();
}

function askLocation(buttonText = null) {
  $("location-error").hidden = true;
  const dialog = $("location-dialog");
  dialog.dataset.button = buttonText || "";
  dialog.returnValue = "";
  dialog.showModal();
}

function setUp() {
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("text");
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    autosize(input);
    await sendText(text);
    input.focus();
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("text").addEventListener("input", (event) => autosize(event.target));
  $("text").addEventListener("paste", (event) => {
    const pasted = (event.clipboardData || window.clipboardData).getData("text");
    if (!parseStartLink(pasted)) return;
    event.preventDefault(); // offered as an invite; "Paste as text" puts it in after all
    askInvite(pasted.trim(), { pasted: true });
  });

  // following the newest message
  const box = $("messages");
  box.addEventListener("scroll", () => {
    state.stick = atNewest(box);
    updateToBottom();
  });
  new ResizeObserver(followNewest).observe(box);
  $("to-bottom").onclick = () => scrollToNewest();

  // start links
  $("open-invite").onclick = () => { $("menu").hidden = true; askInvite(""); };
  $("invite-cancel").onclick = () => $("invite-dialog").close();
  $("invite-me").onclick = () => openInviteAsMe();
  $("invite-other").onclick = () => openInviteAsOther();
  $("invite-form").addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in the link field
    if ($("invite-me").hidden) openInviteAsOther();
    else openInviteAsMe();
  });
  $("invite-link").addEventListener("input", () => { $("invite-error").hidden = true; });
  $("invite-dialog").addEventListener("close", () => {
    const pasted = state.pastedLink;
    state.pastedLink = null;
    if (pasted === null) return;
    const input = $("text");
    input.setRangeText(pasted, input.selectionStart, input.selectionEnd, "end");
    autosize(input);
    input.focus();
  });
  $("picker-invite").addEventListener("submit", (event) => {
    event.preventDefault();
    const invite = resolveStartLink($("picker-invite-link").value);
    const error = $("picker-invite-error");
    error.hidden = !invite.error;
    if (invite.error) {
      error.textContent = invite.error;
      return;
    }
    $("picker-invite-link").value = "";
    choosePersonFor(invite);
  });
  $("picker-invite-link").addEventListener("input", () => { $("picker-invite-error").hidden = true; });
  $("invite-banner-cancel").onclick = () => {
    state.pendingInvite = null;
    renderInviteBanner();
  };
  $("user-search").addEventListener("input", () => renderPicker());

  $("start-button").onclick = async () => {
    try {
      await act("start", {});
    } catch (error) {
      showAlert(error.message);
    }
  };
  $("unblock-button").onclick = async () => {
    await act("unblock", {});
    await act("start", {});
  };
  $("block-toggle").onclick = async () => {
    $("menu").hidden = true;
    await act(state.transcript.blocked ? "unblock" : "block", {});
  };
  $("menu-button").onclick = () => { $("menu").hidden = !$("menu").hidden; };
  $("switch-user").onclick = () => { $("menu").hidden = true; showPicker(); };
  $("back").onclick = () => showPicker();
  $("keyboard-toggle").onclick = () => {
    const box = $("reply-keyboard");
    const visible = !box.hidden;
    box.dataset.userHidden = visible ? "1" : "";
    box.dataset.userShown = visible ? "" : "1";
    renderReplyKeyboard(state.transcript);
  };

  $("attach-button").onclick = () => {
    $("commands-menu").hidden = true;
    $("attach-menu").hidden = !$("attach-menu").hidden;
  };
  $("commands-button").onclick = () => {
    $("attach-menu").hidden = true;
    $("commands-menu").hidden = !$("commands-menu").hidden;
  };
  document.addEventListener("click", (event) => {
    for (const [menu, opener] of [["attach-menu", "attach-button"], ["commands-menu", "commands-button"], ["menu", "menu-button"]]) {
      if (!$(menu).contains(event.target) && event.target !== $(opener)) $(menu).hidden = true;
    }
  });

  $("send-photo").onclick = () => { $("attach-menu").hidden = true; $("photo-input").click(); };
  $("send-file").onclick = () => { $("attach-menu").hidden = true; $("file-input").click(); };
  $("send-location").onclick = () => { $("attach-menu").hidden = true; askLocation(); };
  $("send-contact").onclick = () => { $("attach-menu").hidden = true; askContact(); };

  $("photo-input").addEventListener("change", (event) => {
    const files = [...event.target.files];
    event.target.value = "";
    if (!files.length) return;
    if (files.length > 10) {
      showAlert("一次最多 10 张照片 At most 10 photos at a time");
      return;
    }
    state.pendingPhotos = files;
    $("photo-count").textContent = files.length > 1 ? `${files.length} 张照片（相册） photos (album)` : files[0].name;
    const dialog = $("photo-dialog");
    dialog.returnValue = "";
    dialog.querySelector("input").value = "";
    dialog.showModal();
  });
  $("photo-dialog").addEventListener("close", async () => {
    const dialog = $("photo-dialog");
    if (dialog.returnValue !== "send") return;
    const form = new FormData();
    state.pendingPhotos.forEach((file, index) => form.append(`photo${index}`, file, file.name));
    const caption = dialog.querySelector("input").value;
    if (caption) form.append("caption", caption);
    try {
      await act("photo", form);
    } catch (error) {
      showAlert(error.message);
    }
  });
  $("file-input").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    const form = new FormData();
    form.append("document", file, file.name);
    form.append("filename", file.name);
    if (file.type) form.append("mime_type", file.type);
    try {
      await act("document", form);
    } catch (error) {
      showAlert(error.message);
    }
  });
  $("here-button").onclick = () => {
    if (!navigator.geolocation) {
      showLocationError("浏览器不支持定位 Geolocation is not available");
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (position) => {
        const form = $("location-form");
        form.latitude.value = position.coords.latitude.toFixed(6);
        form.longitude.value = position.coords.longitude.toFixed(6);
      },
      (error) => showLocationError(error.message),
    );
  };
  $("location-dialog").addEventListener("close", async () => {
    const dialog = $("location-dialog");
    if (dialog.returnValue !== "send") return;
    const form = $("location-form");
    const latitude = Number.parseFloat(form.latitude.value);
    const longitude = Number.parseFloat(form.longitude.value);
    if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) {
      showAlert("请输入数字坐标 Please type numeric coordinates");
      return;
    }
    try {
      const button = dialog.dataset.button;
      if (button) {
        await act("press_reply", { text: button, latitude, longitude });
      } else {
        await act("location", { latitude, longitude });
      }
    } catch (error) {
      showAlert(error.message);
    }
  });
  $("contact-dialog").addEventListener("close", async () => {
    if ($("contact-dialog").returnValue !== "send") return;
    try {
      await act("contact", {});
    } catch (error) {
      showAlert(error.message);
    }
  });

  $("bot-select").addEventListener("change", (event) => { state.botId = event.target.value; });
  $("new-user").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { first_name: form.first_name.value.trim(), language_code: form.language_code.value };
    if (form.last_name.value.trim()) body.last_name = form.last_name.value.trim();
    if (form.phone_number.value.trim()) body.phone_number = form.phone_number.value.trim();
    try {
      const user = await api("POST", "/users", body);
      form.reset();
      await pickUser(user);
    } catch (error) {
      showAlert(error.message);
    }
  });
}

function showLocationError(message) {
  const error = $("location-error");
  error.textContent = message;
  error.hidden = false;
}

function autosize(textarea) {
  textarea.style.height = "auto";
  textarea.style.height = `${Math.min(textarea.scrollHeight, 140)}px`;
}

async function main() {
  setUp();
  const identity = readIdentity();
  try {
    await loadWorld();
  } catch (error) {
    showAlert(`沙盒不可用 Sandbox unavailable: ${error.message}`);
    return;
  }
  // /?start=<payload>: a start link of the (first) bot, for someone chosen in the picker
  const query = new URLSearchParams(location.search);
  if (query.has("start") && state.bots.length) {
    const invite = resolveStartLink(`https://t.me/${state.bots[0].username}?start=${encodeURIComponent(query.get("start"))}`);
    query.delete("start");
    const rest = query.toString();
    history.replaceState(null, "", `${location.pathname}${rest ? `?${rest}` : ""}${location.hash}`);
    if (invite.error) {
      showAlert(invite.error);
    } else {
      state.pendingInvite = invite;
      state.botId = invite.bot.id;
      await showPicker();
      return;
    }
  }
  if (identity.bot && state.bots.some((bot) => String(bot.id) === identity.bot)) state.botId = identity.bot;
  const user = state.users.find((u) => String(u.id) === identity.user);
  if (user && state.botId) {
    try {
      await enterChat(user);
      return;
    } catch (error) {
      console.warn(error);
    }
  }
  await showPicker();
}

main();
