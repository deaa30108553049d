// The grid page's position button: the phone's GPS into the form's lat/lon (no inline script: the CSP forbids it).
(function () {
  var button = document.getElementById("grid-locate");
  if (!button) return;
  button.addEventListener("click", function () {
    var where = document.getElementById("grid-where");
    if (!navigator.geolocation) { where.textContent = "此设备不支持定位"; return; }
    where.textContent = "定位中…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      document.getElementById("grid-lat").value = pos.coords.latitude.toFixed(6);
      document.getElementById("grid-lon").value = pos.coords.longitude.toFixed(6);
      where.textContent = pos.coords.latitude.toFixed(5) + ", " + pos.coords.longitude.toFixed(5);
    }, function () { where.textContent = "定位失败（将按所属网格受理）"; }, { enableHighAccuracy: true, timeout: 10000 });
  });
})();
