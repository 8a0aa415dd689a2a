/**
 * embed.html: a page of the same origin that takes the app's composite as a camera. The app runs in
 * an iframe; once it has a composite stream, this page shows it in its own video element.
 */
const frame = document.getElementById('app') as HTMLIFrameElement;
const video = document.getElementById('virtual-camera') as HTMLVideoElement;

const poll = setInterval(() => {
  const stream = (frame.contentWindow as (Window & { cleanplate?: { stream?: MediaStream } }) | null)?.cleanplate?.stream;
  if (!stream) return;
  clearInterval(poll);
  video.srcObject = stream;
  void video.play().catch(() => {});
}, 250);
