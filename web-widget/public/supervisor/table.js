// @ts-check
// Tables in the supervisor view, updated in place.

/**
 * @typedef {string | {text: string, cls?: string} | {button: string, label: string, disabled?: boolean, onclick: () => void}} Cell
 * @typedef {{key: string, cls?: string, cells: Cell[]}} Row
 */

/** Updates a table in place: rows are kept by key and cells change only
 * when their content does, so a button is never swapped out from under a
 * click.
 * @param {HTMLElement} table @param {Row[]} rows */
export function fill(table, rows) {
  const body = /** @type {HTMLElement} */ (table.querySelector('tbody'));
  /** @type {Map<string, HTMLTableRowElement>} */
  const old = new Map([...body.querySelectorAll('tr')].map((tr) => [tr.dataset.key ?? '', /** @type {HTMLTableRowElement} */ (tr)]));
  const next = rows.map((row) => {
    const tr = old.get(row.key) ?? document.createElement('tr');
    tr.dataset.key = row.key;
    tr.className = row.cls ?? '';
    row.cells.forEach((cell, i) => {
      let td = /** @type {HTMLTableCellElement | undefined} */ (tr.children[i]);
      if (!td) {
        td = document.createElement('td');
        tr.append(td);
      }
      if (typeof cell === 'string') cell = { text: cell };
      if ('button' in cell) {
        let button = td.querySelector('button');
        if (!button) {
          button = document.createElement('button');
          button.type = 'button';
          button.className = 'secondary';
          td.replaceChildren(button);
        }
        if (button.textContent !== cell.button) button.textContent = cell.button;
        button.setAttribute('aria-label', cell.label);
        button.disabled = Boolean(cell.disabled);
        button.onclick = cell.onclick;
        td.className = '';
      } else {
        if (td.firstElementChild || td.textContent !== cell.text) td.textContent = cell.text;
        td.className = cell.cls ?? '';
      }
    });
    while (tr.children.length > row.cells.length) tr.lastElementChild?.remove();
    return tr;
  });
  const same = next.length === body.children.length && next.every((tr, i) => body.children[i] === tr);
  if (!same) body.replaceChildren(...next);
}
