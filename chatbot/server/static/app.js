// kgchat's chat page. Plain JavaScript, no libraries, nothing loaded from elsewhere.
//
// Safety rule for this file: text that comes from the server (answers, sentences, document
// names, labels) is only ever put into the page as text -- through el()/svg() below, which
// build nodes and append strings as text nodes -- never through innerHTML or an attribute
// that the browser would run. A document that says <script> shows as the word <script>.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SESSION_KEY = "kgchat.session";
  const TOKEN_KEY = "kgchat.token";
  const MAX_NEIGHBOURS = 16;
  const $ = (id) => document.getElementById(id);

  // -- building nodes (text only) --------------------------------------------------------

  function fill(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const el = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);
  const clear = (node) => { while (node.firstChild) node.firstChild.remove(); };
  const short = (text, n) => (text.length > n ? text.slice(0, n - 1) + "…" : text);

  // -- session and token, kept for this tab only ------------------------------------------

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function sessionId() {
    let id = sessionStorage.getItem(SESSION_KEY);
    if (!id) {
      id = "web-" + newId();
      sessionStorage.setItem(SESSION_KEY, id);
    }
    return id;
  }

  function headers() {
    const h = { "Content-Type": "application/json", Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null; // not JSON: the status line says enough
    }
    if (!response.ok) {
      const why = data && typeof data.error === "string" ? data.error : response.statusText;
      throw new Error(`${response.status}: ${why}`);
    }
    return data;
  }

  // -- the conversation -------------------------------------------------------------------

  const conversation = $("conversation");

  function addTurn(question) {
    const text = el("p", { class: "answer-text" }, "Thinking…");
    const turn = el("li", { class: "turn pending", "aria-busy": "true" },
      el("p", { class: "question" }, question), text);
    conversation.append(turn);
    turn.scrollIntoView({ block: "nearest" });
    return turn;
  }

  function hopView(hop) {
    return el("span", { class: "hop" },
      el("span", { class: "entity" }, hop.subject),
      el("span", { class: "relation" }, ` —${hop.relation}→ `),
      el("span", { class: "entity" }, hop.object));
  }

  function evidenceView(chains) {
    return [
      el("h3", {}, "Evidence"),
      el("ol", { class: "evidence" },
        chains.map((hops) => el("li", { class: "path" },
          hops.map((hop, i) => [i ? el("span", { class: "hop-sep" }, "; ") : null, hopView(hop)])))),
    ];
  }

  function sourceView(source) {
    const name = source.title || source.document;
    return el("li", { class: "source" },
      el("span", { class: "kind" }, source.kind),
      el("span", { class: "document", title: source.document }, name),
      source.title && source.title !== source.document
        ? el("span", { class: "document-uri" }, ` (${source.document})`) : null,
      source.sentence ? el("span", { class: "sentence" }, source.sentence) : null);
  }

  function entityButtons(answer) {
    const names = [...answer.entities.slice(0, 10)];
    if (answer.topic && !names.includes(answer.topic)) names.push(answer.topic);
    if (!names.length) return null;
    return el("div", { class: "entity-row" },
      el("span", { class: "meta" }, "Show the neighbourhood of: "),
      el("ul", { class: "entities" }, names.map((name) => {
        const b = el("button", { type: "button", class: "entity-chip secondary" }, name);
        b.addEventListener("click", () => showEntityByLabel(name));
        return el("li", {}, b);
      })));
  }

  function feedbackView(question, reply) {
    const box = el("div", { class: "feedback" });
    const wrong = el("button", { type: "button", class: "wrong secondary", "aria-expanded": "false" }, "wrong?");
    const fieldId = "right-" + reply.answer_id;
    const input = el("input", { type: "text", id: fieldId, class: "right-answer", required: true, maxlength: 10000 });
    const submit = el("button", { type: "submit", class: "send-correction" }, "Send correction");
    const cancel = el("button", { type: "button", class: "link" }, "Cancel");
    const form = el("form", { class: "correction", hidden: true },
      el("div", {}, el("label", { for: fieldId }, "What is the right answer?"), input), submit, cancel);
    const status = el("p", { class: "status", role: "status" });
    const toggle = (open) => {
      form.hidden = !open;
      wrong.setAttribute("aria-expanded", String(open));
      if (open) input.focus(); else wrong.focus();
    };
    wrong.addEventListener("click", () => toggle(form.hidden));
    cancel.addEventListener("click", () => toggle(false));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const right = input.value.trim();
      if (!right) return;
      submit.disabled = true;
      status.className = "status";
      status.textContent = "Sending…";
      try {
        const outcome = await api("POST", "/feedback", {
          session_id: sessionId(), answer_id: reply.answer_id, question, answer: reply.text,
          correct: false, right_answer: right,
        });
        // "applied": the graph was corrected at once (the token, or a trusting server);
        // otherwise it is queued for review.
        const changes = (outcome && outcome.changes) || [];
        const detail = outcome && outcome.detail ? ` (${outcome.detail})` : "";
        status.className = "status ok";
        status.textContent = outcome && outcome.status === "applied"
          ? "Thank you: the graph was corrected." + (changes.length ? " " + changes.join("; ") : "")
          : `Thank you: your correction was recorded${detail}.`;
        form.hidden = true;
        wrong.disabled = true;
        wrong.setAttribute("aria-expanded", "false");
      } catch (err) {
        status.className = "status bad";
        status.textContent = "The correction could not be used: " + err.message;
      } finally {
        submit.disabled = false;
      }
    });
    box.append(wrong, form, status);
    return box;
  }

  function showReply(turn, question, reply) {
    turn.classList.remove("pending");
    turn.removeAttribute("aria-busy");
    if (reply.answer_id) turn.setAttribute("data-answer-id", reply.answer_id);
    turn.querySelector(".answer-text").textContent = reply.text;
    const answer = reply.answer;
    if (reply.kind === "statement") {
      turn.append(el("p", { class: "meta" }, reply.stored ? "Stored in the graph." : "Not stored."));
      return;
    }
    if (!answer) return;
    const meta = [answer.status];
    if (answer.status === "answered") meta.push(`confidence ${Math.round(answer.confidence * 100)}%`);
    if (answer.note) meta.push(answer.note);
    turn.append(el("p", { class: "meta" }, meta.join(" · ")));
    turn.append(entityButtons(answer) || "");
    if (answer.evidence && answer.evidence.length) turn.append(...evidenceView(answer.evidence));
    if (answer.sources && answer.sources.length) {
      turn.append(el("h3", {}, "Sources"), el("ul", { class: "sources" }, answer.sources.map(sourceView)));
    }
    if (answer.status !== "clarify") turn.append(feedbackView(question, reply));
    const first = answer.entities[0] || answer.topic;
    if (first && answer.status === "answered") showEntityByLabel(first);
  }

  function showError(turn, err) {
    turn.classList.remove("pending");
    turn.classList.add("error");
    turn.removeAttribute("aria-busy");
    turn.querySelector(".answer-text").textContent = "Something went wrong: " + err.message;
  }

  async function ask(event) {
    event.preventDefault();
    const box = $("message");
    const text = box.value.trim();
    if (!text) return;
    const send = $("send");
    send.disabled = true;
    $("ask-status").textContent = "Waiting for the answer…";
    const turn = addTurn(text);
    box.value = "";
    try {
      const reply = await api("POST", "/chat", { session_id: sessionId(), message: text });
      showReply(turn, text, reply);
      $("ask-status").textContent = "";
    } catch (err) {
      showError(turn, err);
      $("ask-status").textContent = "";
    } finally {
      send.disabled = false;
      box.focus();
    }
  }

  // -- the neighbourhood picture ----------------------------------------------------------

  const graph = $("graph");
  const graphStatus = $("graph-status");
  let drawing = 0; // only the latest request draws

  async function showEntityByLabel(label) {
    const mine = ++drawing;
    graphStatus.textContent = `Looking up ${label}…`;
    try {
      const found = await api("GET", "/lookup?label=" + encodeURIComponent(label));
      if (mine !== drawing) return;
      if (!found.entities.length) {
        graphStatus.textContent = `No entity named ${label} in the graph.`;
        return;
      }
      await showEntity(found.entities[0].iri, mine);
    } catch (err) {
      if (mine === drawing) graphStatus.textContent = "Could not load the neighbourhood: " + err.message;
    }
  }

  async function showEntity(iri, mine = ++drawing) {
    graphStatus.textContent = "Loading the neighbourhood…";
    try {
      const entity = await api("GET", "/entities/" + encodeURIComponent(iri));
      if (mine !== drawing) return;
      draw(entity);
    } catch (err) {
      if (mine === drawing) graphStatus.textContent = "Could not load the neighbourhood: " + err.message;
    }
  }

  // Edges to one neighbour are merged: one line, its relations listed on it.
  function neighbours(entity) {
    const byNode = new Map();
    const add = (edge, dir) => {
      let n = byNode.get(edge.node);
      if (!n) {
        n = { node: edge.node, label: edge.label, literal: edge.literal, rels: [], out: false, in: false };
        byNode.set(edge.node, n);
      }
      n.rels.push(edge.relation_label);
      n[dir] = true;
    };
    entity.outgoing.forEach((e) => add(e, "out"));
    entity.incoming.forEach((e) => add(e, "in"));
    return [...byNode.values()];
  }

  const hitWidth = (name) => Math.max(28, name.length * 8.5 + 8);

  function draw(entity) {
    const all = neighbours(entity);
    const shown = all.slice(0, MAX_NEIGHBOURS);
    const cx = 320, cy = 232, rx = 228, ry = 170, r0 = 15, r1 = 9;
    clear(graph);
    graph.append(svg("defs", {},
      svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7",
                      markerHeight: "7", orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#9aa3b2" }))));
    const edges = svg("g", { class: "edges" });
    const labels = svg("g", { class: "edge-labels" });
    const nodes = svg("g", { class: "nodes" });
    shown.forEach((n, i) => {
      const angle = (2 * Math.PI * i) / shown.length - Math.PI / 2;
      const x = cx + rx * Math.cos(angle), y = cy + ry * Math.sin(angle);
      const dx = x - cx, dy = y - cy, len = Math.hypot(dx, dy) || 1;
      const ux = dx / len, uy = dy / len;
      edges.append(svg("line", {
        class: "edge", x1: cx + ux * r0, y1: cy + uy * r0, x2: x - ux * (r1 + 2), y2: y - uy * (r1 + 2),
        "marker-end": n.out ? "url(#arrow)" : null, "marker-start": n.in ? "url(#arrow)" : null,
      }));
      const rel = [...new Set(n.rels)].join(", ");
      labels.append(svg("text", { class: "edge-label", x: cx + dx * 0.55, y: cy + dy * 0.55 - 3,
                                  "text-anchor": "middle" },
        svg("title", {}, rel), short(rel, 28)));
      const name = short(n.label, 24);
      let node;
      if (n.literal) {
        node = svg("g", { class: "node literal", transform: `translate(${x},${y})` },
          svg("title", {}, n.label),
          svg("rect", { x: -r1, y: -r1 * 0.7, width: r1 * 2, height: r1 * 1.4, rx: 2 }),
          svg("text", { y: 27, "text-anchor": "middle" }, name));
      } else {
        node = svg("g", { class: "node neighbour", transform: `translate(${x},${y})`, tabindex: "0",
                          role: "button", "aria-label": `Re-centre on ${n.label}`, "data-iri": n.node },
          svg("title", {}, `${n.label} (click to re-centre)`),
          // One target for the circle, its label and the gap between them.
          svg("rect", { class: "hit", x: -hitWidth(name) / 2, y: -r1 - 3, width: hitWidth(name), height: 36 + r1 }),
          svg("circle", { r: r1 }),
          svg("text", { y: 27, "text-anchor": "middle" }, name));
        const go = () => showEntity(n.node);
        node.addEventListener("click", go);
        node.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            go();
          }
        });
      }
      nodes.append(node);
    });
    nodes.append(svg("g", { class: "node centre", transform: `translate(${cx},${cy})`, "data-iri": entity.iri },
      svg("title", {}, entity.iri),
      svg("circle", { r: r0 }),
      svg("text", { y: 35, "text-anchor": "middle" }, short(entity.label, 32))));
    graph.append(edges, labels, nodes);
    if (all.length > shown.length) {
      graph.append(svg("text", { class: "more", x: 8, y: 470 },
        `+${all.length - shown.length} more neighbours (see the list)`));
    }
    graph.removeAttribute("hidden"); // an SVG element has no .hidden property
    const types = entity.types.map((t) => t.label).join(", ");
    graphStatus.textContent = `${entity.label}${types ? " (" + types + ")" : ""}: ` +
      `${all.length} neighbour${all.length === 1 ? "" : "s"}. Select a neighbour to re-centre.`;
    listEdges(entity, all);
  }

  function listEdges(entity, all) {
    const list = $("graph-list");
    clear(list);
    for (const n of all) {
      const rel = [...new Set(n.rels)].join(", ");
      const line = n.out && !n.in ? `${entity.label} —${rel}→ ${n.label}`
        : n.in && !n.out ? `${n.label} —${rel}→ ${entity.label}` : `${entity.label} —${rel}— ${n.label}`;
      const item = el("li", {}, line);
      if (!n.literal) {
        const b = el("button", { type: "button", class: "link" }, "re-centre");
        b.addEventListener("click", () => showEntity(n.node));
        item.append(" ", b);
      }
      list.append(item);
    }
    $("graph-list-box").hidden = false;
  }

  // -- wiring -----------------------------------------------------------------------------

  function start() {
    sessionId();
    $("ask").addEventListener("submit", ask);
    $("message").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("ask").requestSubmit();
      }
    });
    const token = $("token");
    token.value = sessionStorage.getItem(TOKEN_KEY) || "";
    token.addEventListener("input", () => {
      if (token.value) sessionStorage.setItem(TOKEN_KEY, token.value);
      else sessionStorage.removeItem(TOKEN_KEY);
    });
    $("new-session").addEventListener("click", () => {
      sessionStorage.setItem(SESSION_KEY, "web-" + newId());
      clear(conversation);
      $("ask-status").textContent = "New conversation started.";
      $("message").focus();
    });
  }

  start();
})();
