// @ts-check
// Short tones made in the page, so no sound file is fetched: the widget's
// "a counsellor joined" and the console's ring for a new session.

/**
 * Plays each frequency in turn, 150 ms each.
 * @param {number[]} hertz
 * @param {number} volume 0 to 1
 * @param {number} [gap] seconds from one tone's start to the next
 */
export function tones(hertz, volume, gap = 0.2) {
  try {
    const audio = new AudioContext();
    const gain = audio.createGain();
    gain.gain.value = volume;
    gain.connect(audio.destination);
    hertz.forEach((hz, i) => {
      const osc = audio.createOscillator();
      osc.frequency.value = hz;
      osc.connect(gain);
      osc.start(audio.currentTime + i * gap);
      osc.stop(audio.currentTime + i * gap + 0.15);
    });
    setTimeout(() => audio.close(), 1000 + hertz.length * gap * 1000);
  } catch {
    // No audio available: the visible signs still tell.
  }
}
