// minsheng pages: keyboard shortcuts, live countdowns, suggestion helpers, ECharts maps and the big screen.
(function () {
  "use strict";
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  // Ctrl+Enter submits the form being typed in (operator desk, any form).
  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.form) { e.preventDefault(); e.target.form.requestSubmit(); }
  });

  // A form is submitted once: a second click while the first request runs is ignored.
  // data-confirm="question" asks first (no inline onsubmit: the CSP allows no inline script).
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) { e.preventDefault(); return; }
    if (f.dataset.sent) { e.preventDefault(); return; }
    f.dataset.sent = "1";
    setTimeout(function () { delete f.dataset.sent; }, 4000);
  });

  // Suggestions: fill a field, or answer directly with a knowledge-base answer.
  document.addEventListener("click", function (e) {
    var t = e.target;
    if (t.dataset && t.dataset.back !== undefined) { e.preventDefault(); history.back(); return; }
    if (t.dataset && t.dataset.fill) {
      var field = document.querySelector("[name=" + t.dataset.fill + "]");
      if (field) { field.value = t.dataset.value; }
    }
    if (t.dataset && t.dataset.answer !== undefined) {
      var a = $("#answer"); if (a) { a.value = t.dataset.answer; a.focus(); }
      var r = $("input[name=action][value=answer]"); if (r) { r.checked = true; }
    }
  });

  function span(s) {
    s = Math.abs(Math.floor(s)); var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return d ? d + "天" + h + "小时" : h ? h + "小时" + m + "分" : m + "分";
  }
  function tick() {
    $all("[data-due]").forEach(function (el) {
      if (!el.dataset.due) { return; }
      var left = (Date.parse(el.dataset.due) - Date.now()) / 1000;
      el.textContent = left < 0 ? "已超时 " + span(left) : "剩余 " + span(left);
      el.className = "due " + (left < 0 ? "late" : left < 3600 ? "soon" : "ok");
    });
  }
  setInterval(tick, 30000);

  function areaMap(el, opts) {
    if (!window.echarts || !el) { return null; }
    var geo = JSON.parse(el.dataset.geo || "{}");
    if (!geo.features || !geo.features.length) { return null; }
    echarts.registerMap("areas", geo);
    var chart = echarts.init(el, opts && opts.dark ? "dark" : null);
    var series = [{ type: "map", map: "areas", roam: true, selectedMode: false, label: { show: true, fontSize: 11 },
      itemStyle: { areaColor: "#e8eef7", borderColor: "#7a8fb0" }, emphasis: { itemStyle: { areaColor: "#bfd6ff" } },
      data: (opts && opts.data) || [] }];
    var option = { tooltip: { trigger: "item" }, series: series };
    if (el.dataset.point) {
      var p = JSON.parse(el.dataset.point);
      option.geo = { map: "areas", roam: true, itemStyle: { areaColor: "#e8eef7", borderColor: "#7a8fb0" }, label: { show: true, fontSize: 10 } };
      option.series = [{ type: "scatter", coordinateSystem: "geo", data: [p], symbolSize: 16, itemStyle: { color: "#c0262d" } }];
    }
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
    return chart;
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    areaMap($("#amap"));
    areaMap($("#tmap"));
    var pm = $("#pmap");
    if (pm) {
      var pick = pm.dataset.pick;
      var geo = JSON.parse(pm.dataset.geo || "{}");
      if (window.echarts && geo.features && geo.features.length) {
        echarts.registerMap("areas", geo);
        var chart = echarts.init(pm);
        var lat = $("#lat"), lon = $("#lon");
        var pts = lat.value ? [[+lon.value, +lat.value]] : [];
        chart.setOption({ geo: { map: "areas", roam: true, label: { show: true, fontSize: 11 }, itemStyle: { areaColor: "#eef3fb", borderColor: "#7a8fb0" } },
          series: [{ type: "scatter", coordinateSystem: "geo", data: pts, symbolSize: 18, itemStyle: { color: "#c0262d" } }] });
        if (pick) {
          chart.getZr().on("click", function (ev) {
            var c = chart.convertFromPixel({ geoIndex: 0 }, [ev.offsetX, ev.offsetY]);
            if (!c) { return; }
            lon.value = c[0].toFixed(6); lat.value = c[1].toFixed(6);
            chart.setOption({ series: [{ data: [c] }] });
            $("#picked").textContent = "已选位置：" + lat.value + ", " + lon.value;
          });
        }
      }
    }
    if (document.body.classList.contains("screen")) { screen(); }
  });

  function screen() {
    var data = JSON.parse($("#screen-data").textContent);
    var axis = { axisLine: { lineStyle: { color: "#3d6aa8" } }, axisLabel: { color: "#9cc8ff" }, splitLine: { lineStyle: { color: "#12325f" } } };
    var hours = echarts.init($("#ch-hours"));
    var channel = echarts.init($("#ch-channel"));
    var mapEl = $("#ch-map");
    var geo = JSON.parse(mapEl.dataset.geo || "{}");
    var map = null;
    if (geo.features && geo.features.length) { echarts.registerMap("areas", geo); map = echarts.init(mapEl); }
    var mode = $("#map-mode");
    function draw(d) {
      hours.setOption({ grid: { left: 40, right: 10, top: 20, bottom: 28 }, tooltip: { trigger: "axis" },
        xAxis: Object.assign({ type: "category", data: d.hours.map(function (_, i) { return i + "时"; }) }, axis),
        yAxis: Object.assign({ type: "value" }, axis),
        series: [{ type: "bar", data: d.hours, itemStyle: { color: "#3ba0ff" } }] });
      channel.setOption({ tooltip: { trigger: "item" }, legend: { bottom: 0, textStyle: { color: "#9cc8ff" } },
        series: [{ type: "pie", radius: ["38%", "66%"], center: ["50%", "44%"], data: d.channels, label: { color: "#d8e6ff" } }] });
      if (map) {
        var key = mode.value;
        var vals = d.map.map(function (m) { return { name: m.name, value: m[key] }; });
        var max = Math.max.apply(null, vals.map(function (v) { return v.value; }).concat([1]));
        map.setOption({ tooltip: { trigger: "item" },
          visualMap: { min: 0, max: max, left: 10, bottom: 10, text: ["高", "低"], textStyle: { color: "#9cc8ff" }, calculable: true,
            inRange: { color: key === "overdue" ? ["#2b3f63", "#ff9f43", "#ff4d4f"] : ["#173b73", "#3ba0ff", "#ffd666"] } },
          series: [{ type: "map", map: "areas", roam: true, data: vals, label: { show: true, color: "#fff", fontSize: 12 },
            itemStyle: { borderColor: "#5d8fd8", areaColor: "#173b73" } }] });
      }
      $("#k-today").textContent = d.today_total;
      Object.keys(d.rates).forEach(function (k) { var el = $("#k-" + k); if (el) { el.textContent = d.rates[k] === null ? "—" : d.rates[k].toFixed(1) + "%"; } });
      $("#s-at").textContent = d.at;
      $("#rank").innerHTML = d.ranking.map(function (r, i) {
        return "<tr><td>" + (i + 1) + "</td><td>" + esc(r.unit) + "</td><td>" + r.total + "</td><td>" + r.closed + "</td><td>" + r.returned + "</td><td>" + r.rate + "%</td></tr>";
      }).join("");
    }
    function esc(s) { var d = document.createElement("div"); d.textContent = s; return d.innerHTML; }
    draw(data);
    mode.addEventListener("change", function () { draw(data); });
    var period = $("#screen-period");
    if (period) { period.addEventListener("change", function () { period.form.submit(); }); }
    setInterval(function () {
      fetch("/screen/data" + window.location.search, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (d) { data = d; draw(d); });
    }, 30000);
    if (window.EventSource) {
      var es = new EventSource("/screen/events");
      es.addEventListener("ticket", function (ev) {
        var t = JSON.parse(ev.data), ul = $("#feed"), li = document.createElement("li");
        li.className = "new";
        li.innerHTML = "<time>" + esc(t.at) + "</time> <span class=\"ch\">" + esc(t.channel) + "</span> " + esc(t.title);
        ul.insertBefore(li, ul.firstChild);
        while (ul.children.length > 14) { ul.removeChild(ul.lastChild); }
        $("#k-today").textContent = (+$("#k-today").textContent || 0) + 1;
      });
    }
    window.addEventListener("resize", function () { hours.resize(); channel.resize(); if (map) { map.resize(); } });
  }
})();
