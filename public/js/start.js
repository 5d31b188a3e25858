// The start page: a room picked from the list keeps the name typed so far.
// Without this script the links still work; they keep the name the page
// was opened with.

const nameInput = document.querySelector('[data-testid="name-input"]');
const links = document.querySelectorAll('[data-testid="room-link"]');

function keepName() {
  const name = nameInput?.value.trim() ?? "";
  for (const link of links) {
    const query = new URLSearchParams({ room: link.dataset.room });
    if (name) query.set("name", name);
    link.href = `/?${query}`;
  }
}

nameInput?.addEventListener("input", keepName);
keepName();
